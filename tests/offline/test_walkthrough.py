"""`rolelab demo --step`, non-interactive, on the offline lab: every config verify accepts
narrates as the lesson says, the narration stays on stderr, and a recap ends it."""

from __future__ import annotations

import json

import pytest

from labs.cli.main import main
from labs.lesson.stages import LESSON

STAGE_TITLES = [stage.title for stage in LESSON]


def demo_step(capsys, stack: str, *config: str) -> tuple[int, dict, str]:
    argv = ["demo", "--step", "--json", "--stack", stack]
    for value in config:
        argv += ["--config", value]
    code = main(argv)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err  # stdout is the report, and only the report


def stage_results(report: dict) -> dict[str, list[tuple[str, str, str]]]:
    """stage number -> (host, check, status) in order."""
    stages: dict[str, list[tuple[str, str, str]]] = {}
    for r in report["results"]:
        stages.setdefault(r["phase"].split(".")[0], []).append((r["host"], r["check"], r["status"]))
    return stages


@pytest.mark.parametrize("stack, config, role, list_users_with_role", [
    ("wt-role", ("roleName=LabRole",), "LabRole", "Success"),
    ("wt-s3", ("policies=AmazonS3ReadOnlyAccess",), "DemoRoleForEC2", "AccessDenied"),
])
def test_the_walkthrough_follows_the_declared_state(capsys, stack, config, role, list_users_with_role):
    code, report, narration = demo_step(capsys, stack, *config)
    failed = [r for r in report["results"] if r["status"] != "pass"]
    assert code == 0, failed
    results = {(r["phase"], r["host"], r["check"]): r for r in report["results"]}
    assert results[("stage 1.1", "no-role", "iam-list-users")]["observed"] == "NoCredentials"
    assert results[("stage 1.2", "with-role", "iam-list-users")]["observed"] == list_users_with_role
    assert results[("stage 4.3", "no-role", "sts-caller-identity")]["observed"].startswith(f"assumed-role/{role}/")
    assert results[("stage 5.1", "with-role", "second-association")]["observed"] == "IncorrectState"
    assert results[("stage 6.5", "with-role", "imds-tokenless")]["observed"] == "HTTP 200"  # after IMDSv1 allowed
    for title in STAGE_TITLES:
        assert title in narration
    assert "== Recap: what each stage showed" in narration
    assert narration.count("ok  ") >= len(LESSON)


def test_the_walkthrough_narrates_every_student_of_a_class(capsys):
    code, report, narration = demo_step(capsys, "wt-class", "students=2")
    assert code == 0, [r for r in report["results"] if r["status"] != "pass"]
    assert {r["student"] for r in report["results"]} == {"student01", "student02"}
    assert "##### Student student01" in narration and "##### Student student02" in narration
    per_student = {s: stage_results({"results": [r for r in report["results"] if r["student"] == s]})
                   for s in ("student01", "student02")}
    assert per_student["student01"] == per_student["student02"], "both students walk the same stages"
    assert len(per_student["student01"]) == len(LESSON)

"""What a person reads at a terminal and in a log: short lines, a dead host once, the summary last;
and the SSH wait is said while it lasts."""

from __future__ import annotations

import io
import time

import paramiko
import pytest
from rich.console import Console

from labs.cli.main import build_parser
from labs.lesson.checks import finding
from labs.lesson.findings import Status
from labs.remote.session import HostSession, Unreachable, planned_attempts
from labs.report.model import Report
from labs.report.progress import Progress
from labs.report.terminal import print_terminal
from labs.report.text import render_text
from tests.unit.test_report import check, host, passed

LONG = "An error occurred (AccessDenied) when calling the ListUsers operation: " + "x" * 300


def class_report() -> Report:
    report = Report("class", "local", started=0.0)
    bad = finding(check("student02", "with-role", "iam-list-users"), Status.FAIL, LONG, 3, 4.0)
    report.add([passed("student01", "no-role", "imds-tokenless"), bad.with_hint("the role's policies")])
    report.add([finding(check("student03", "no-role", c), Status.UNREACHABLE, "unreachable", 12, 15.0,
                        note="no SSH").with_hint("sshd refused: see `rolelab local status`")
                for c in ("imds-tokenless", "iam-list-users", "nothing-stored")])
    report.seconds = 16.0
    return report


def terminal(report: Report, verbose: bool = False, width: int = 100) -> list[str]:
    out = io.StringIO()
    print_terminal(report, Console(file=out, width=width, force_terminal=False), verbose=verbose)
    return out.getvalue().splitlines()


def test_the_terminal_view_is_short_a_dead_host_is_one_line_and_the_summary_is_last():
    lines = terminal(class_report())
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    assert [line for line in lines if line.startswith("UNREACHABLE")] == [
        "UNREACHABLE student03/no-role: 3 check(s) not run, no SSH after 12 attempt(s) in 15.0 s"]
    failure = next(line for line in lines if line.startswith("FAIL"))
    assert failure.endswith("…") and "student02/with-role iam-list-users: expected Success" in failure
    assert "    hint: the role's policies" in lines
    assert lines[-1].startswith("5 checks: 1 passed, 1 failed, 3 unreachable in 16.0 s -> exit 1")
    assert lines[-2] == "class: 1/3 students all green; needs attention: student02 (fail), student03 (unreachable)"


def test_verbose_shows_every_check_and_long_values_whole():
    text = "\n".join(terminal(class_report(), verbose=True, width=100))
    assert text.count("student03/no-role") >= 3
    assert LONG.replace(" ", "") in "".join(text.split())  # whole (wrapped to the width, never cut)
    assert all(len(line) <= 100 for line in text.splitlines())


def test_the_piped_table_cuts_long_values_and_the_failures_show_them_whole():
    text = render_text(class_report())
    row = next(line for line in text.splitlines() if line.startswith("verify  student02/with-role"))
    assert "…" in row and len(row) < 160
    assert f"  observed: {LONG}" in text


def test_an_ssh_wait_is_reported_on_every_attempt(monkeypatch):
    def refused(self, *args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(paramiko.SSHClient, "connect", refused)
    told: list[tuple[int, int, float]] = []
    session = HostSession(host("student03", "no-role", None), paramiko.HostKeys(), None, budget=1.0,
                          on_attempt=lambda n, of, seconds: told.append((n, of, seconds)))
    with pytest.raises(Unreachable) as error:
        session.connect()
    assert [n for n, _, _ in told] == list(range(2, error.value.attempts + 1))
    assert all(of == planned_attempts(1.0) or of == n for n, of, _ in told)
    assert told[-1][2] <= error.value.seconds and error.value.seconds >= 1.0


def test_piped_progress_says_the_wait_in_one_plain_line():
    out = io.StringIO()
    Progress(stream=out).waiting("student03/no-role", 3, 12, 6.2)
    assert out.getvalue() == "  waiting for SSH on student03/no-role (attempt 3/12, 6 s)\n"


@pytest.mark.parametrize("argv, level", [(["-v", "verify"], 1), (["verify", "-v"], 1), (["-vv", "verify"], 2),
                                         (["-v", "local", "status", "-v"], 1), (["verify"], 0)])
def test_verbose_works_before_or_after_the_command(argv, level):
    assert build_parser().parse_args(argv).verbose == level


def test_planned_attempts_follow_the_backoff():
    assert planned_attempts(15) == 12 and planned_attempts(0.0) == 1
    started = time.monotonic()
    assert planned_attempts(180) > planned_attempts(15)
    assert time.monotonic() - started < 0.1

"""`local up` on a running stack converges it like `pulumi up --refresh`: in-place changes and drift
repaired, the instances untouched (same ids, ports and host keys); `local preview` shows it first."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from labs.cli.main import main
from labs.core.outputs import LabOutputs
from labs.lesson.account import profile_arn
from labs.program.policies import SUPPORTED
from labs.provision import local
from labs.provision.operator import operator_clients
from tests.offline.conftest import ssh, stack_up

STACK = "converge"
READ_ONLY = SUPPORTED["IAMReadOnlyAccess"].arn
S3_READ = SUPPORTED["AmazonS3ReadOnlyAccess"].arn


@pytest.fixture(scope="module")
def lab() -> Iterator[LabOutputs]:
    with stack_up(STACK, {"students": "2"}) as outputs:
        yield outputs


def identity(outputs: LabOutputs) -> list[tuple[str, str, int]]:
    return [(h.label, h.instance_id, h.port) for h in outputs.hosts]


def verify(capsys, stack: str = STACK) -> tuple[int, dict]:
    code = main(["verify", "--local", "--stack", stack, "--json", "--quiet"])
    return code, json.loads(capsys.readouterr().out)


def preview(capsys, *argv: str) -> dict:
    assert main(["local", "preview", "--stack", STACK, "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_drift_by_hand_is_previewed_and_put_back(lab, capsys):
    clients = operator_clients(lab)
    iam, ec2 = clients("iam"), clients("ec2")
    with_role, no_role = lab.host("with-role", "student01"), lab.host("no-role", "student02")
    iam.detach_role_policy(RoleName=with_role.role, PolicyArn=READ_ONLY)
    ec2.associate_iam_instance_profile(
        IamInstanceProfile={"Arn": profile_arn(ec2, lab.host("with-role", "student02").instance_id)},
        InstanceId=no_role.instance_id)
    planned = preview(capsys, "--config", "students=2")
    changes = {(c["host"], c["repair"].split(" --")[0]) for c in planned["changes"]}
    assert changes == {("student01/with-role", "aws iam attach-role-policy"),
                       ("student02/no-role", "aws ec2 disassociate-iam-instance-profile")}, planned
    assert verify(capsys)[0] == 1, "the drift is real before up"
    up = local.up({"students": "2"}, stack=STACK)
    assert up.already_up and len(up.put_back) == 2
    assert identity(up.outputs) == identity(lab), "instances, ports and ids are untouched"
    assert preview(capsys, "--config", "students=2")["changes"] == []
    code, report = verify(capsys)
    assert code == 0, [r for r in report["results"] if r["status"] != "pass"]


def test_student_limits_the_repair_to_one_student(lab, capsys):
    iam = operator_clients(lab)("iam")
    for student in ("student01", "student02"):
        iam.detach_role_policy(RoleName=lab.host("with-role", student).role, PolicyArn=READ_ONLY)
    try:
        up = local.up({"students": "2"}, stack=STACK, students=("student02",))
        assert [line.split(":")[0] for line in up.put_back] == ["student02/with-role"]
        left = preview(capsys, "--config", "students=2")["changes"]
        assert [c["host"] for c in left] == ["student01/with-role"], "the other student is left as it was"
    finally:
        local.up({"students": "2"}, stack=STACK)
    assert preview(capsys, "--config", "students=2")["changes"] == []


def test_a_policy_change_is_applied_in_place_and_verified_with_the_new_expectations(lab, capsys):
    pinned = open(lab.known_hosts).read()
    planned = preview(capsys, "--config", "students=2", "--config", "policies=AmazonS3ReadOnlyAccess")
    assert planned["config"] == {"policies": {"from": None, "to": "AmazonS3ReadOnlyAccess"}}
    assert planned["count"] == {"update": 4, "create": 0, "delete": 0, "replace": 0}  # attach + detach, 2 roles
    try:
        assert main(["local", "up", "--stack", STACK, "--config", "students=2",
                     "--config", "policies=AmazonS3ReadOnlyAccess"]) == 0
        text = capsys.readouterr().out
        assert "put back 4 difference(s) in place" in text
        changed = local.read_outputs(STACK)
        assert identity(changed) == identity(lab)
        assert changed.host("with-role", "student01").policies == (S3_READ,)
        code, report = verify(capsys)
        assert code == 0, [r for r in report["results"] if r["status"] != "pass"]
        checks = {(r["student"], r["host"], r["check"]): r["expected"] for r in report["results"]}
        assert checks[("student01", "with-role", "iam-list-users")] == "AccessDenied"
        assert checks[("student01", "with-role", "s3-list-buckets")] == "Success"
        # verify connected with RejectPolicy against the pins made at the first up: the same host keys
        assert open(changed.known_hosts).read() == pinned
    finally:
        local.up({"students": "2"}, stack=STACK)
    assert local.read_outputs(STACK).host("with-role", "student02").policies == (READ_ONLY,)


def test_changes_that_need_new_instances_are_refused_in_one_line(lab, capsys):
    assert main(["local", "up", "--stack", STACK, "--config", "students=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "changing students creates or replaces instances" in err
    assert identity(local.read_outputs(STACK)) == identity(lab)


def test_exercise_to_full_lab_in_place_gives_the_running_host_credentials(capsys):
    with stack_up("converge-ex", {"exercise": "true"}) as start:
        host = start.host("with-role")
        assert ssh(start, host, "aws iam list-users").returncode != 0
        main(["local", "preview", "--stack", "converge-ex", "--json"])
        planned = json.loads(capsys.readouterr().out)
        assert planned["config"] == {"exercise": {"from": "true", "to": None}}
        assert {c["host"] for c in planned["changes"]} == {"student01/with-role"}
        full = local.up({}, stack="converge-ex")
        assert identity(full.outputs) == identity(start), "the same instances: no restart, no replacement"
        assert full.outputs.host("with-role").role == "DemoRoleForEC2" and not full.outputs.exercise
        listing = ssh(full.outputs, host, "aws iam list-users --output json")
        assert listing.returncode == 0 and '"Users"' in listing.stdout, listing.stderr
        code, report = verify(capsys, "converge-ex")
        assert code == 0, [r for r in report["results"] if r["status"] != "pass"]

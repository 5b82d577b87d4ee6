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


def verify(capsys, stack: str = STACK, *extra: str) -> tuple[int, dict]:
    code = main(["verify", "--local", "--stack", stack, "--json", "--quiet", *extra])
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
    # the drift is made already: no settle budget to wait out for checks that are meant to fail
    code, report = verify(capsys, STACK, "--settle", "0")
    assert code == 1, "the drift is real before up"
    assert {(r["student"], r["host"]) for r in report["results"] if r["status"] != "pass"} == \
        {("student01", "with-role"), ("student02", "no-role")}, "the drift is what fails, and nothing else"
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
        assert [line.split(":")[0] for line in up.put_back] == ["~ drift   student02/with-role"]
        left = preview(capsys, "--config", "students=2")["changes"]
        assert [c["host"] for c in left] == ["student01/with-role"], "the other student is left as it was"
    finally:
        local.up({"students": "2"}, stack=STACK)
    assert preview(capsys, "--config", "students=2")["changes"] == []


def test_a_policy_change_is_applied_in_place_and_verified_with_the_new_expectations(lab, capsys):
    pinned = open(lab.known_hosts).read()
    planned = preview(capsys, "--config", "students=2", "--config", "policies=AmazonS3ReadOnlyAccess")
    assert planned["config"] == {"policies": {"from": None, "to": "AmazonS3ReadOnlyAccess"}}
    # a policy attachment is a resource of its own: one made and one deleted per student's role
    assert planned["count"] == {"update": 0, "create": 2, "delete": 2, "replace": 0}, planned["steps"]
    try:
        assert main(["local", "up", "--stack", STACK, "--config", "students=2",
                     "--config", "policies=AmazonS3ReadOnlyAccess"]) == 0
        text = capsys.readouterr().out
        assert "put back 4 difference(s) in place" in text and "+ create  RolePolicyAttachment" in text
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


def host_keys(outputs: LabOutputs) -> dict[str, str]:
    ports = {f"[127.0.0.1]:{h.port}": h.label for h in outputs.hosts}
    return {ports[line.split()[0]]: line.split(" ", 1)[1] for line in open(outputs.known_hosts).read().splitlines()
            if line.split()[0] in ports}


def test_a_late_student_joins_and_leaves_without_touching_the_others(lab, capsys):
    keys = host_keys(lab)
    session = __import__("subprocess").Popen(
        __import__("labs.remote.openssh", fromlist=["openssh_argv"]).openssh_argv(
            lab, lab.host("with-role", "student01"), command=["read go; echo still-here"]),
        stdin=__import__("subprocess").PIPE, stdout=__import__("subprocess").PIPE, text=True)
    try:
        planned = preview(capsys, "--config", "students=3")
        assert planned["count"]["create"] >= 4 and planned["count"]["delete"] == 0, planned["steps"]
        assert main(["local", "preview", "--stack", STACK, "--config", "students=3"]) == 0
        count = planned["count"]
        assert capsys.readouterr().out.splitlines()[-1] == (  # the people's count line says what the steps say
            f"{count['update']} to update in place, {count['create']} to create, 0 to delete, {count['replace']} to replace")
        grown = local.up({"students": "3"}, stack=STACK)
        assert identity(grown.outputs)[:4] == identity(lab), "students 01 and 02 keep ids and ports"
        assert {k: v for k, v in host_keys(grown.outputs).items() if not k.startswith("student03")} == keys
        assert grown.outputs.students() == ("student01", "student02", "student03")
        code, report = verify(capsys)
        assert code == 0 and {r["student"] for r in report["results"]} == {"student01", "student02", "student03"}
        shrunk = local.up({"students": "2"}, stack=STACK)
        assert identity(shrunk.outputs) == identity(lab) and "student03" not in shrunk.outputs.students()
        gone = grown.outputs.host("with-role", "student03").instance_id
        states = operator_clients(lab)("ec2").describe_instances(InstanceIds=[gone])
        assert states["Reservations"][0]["Instances"][0]["State"]["Name"] in ("shutting-down", "terminated")
        assert verify(capsys)[0] == 0
        # the session waited on the host through the grow and the shrink; only now is it let go
        out, _ = session.communicate("go\n", timeout=60)
        assert "still-here" in out, "a session on a remaining host never dropped"
    finally:
        session.kill()
        session.wait()
        local.up({"students": "2"}, stack=STACK)


def test_a_late_students_role_made_by_hand_is_refused_and_the_class_is_left_as_it_was(lab, capsys):
    iam = operator_clients(lab)("iam")
    iam.create_role(RoleName="DemoRoleForEC2-student03", AssumeRolePolicyDocument="{}")  # no lab tags: not ours
    try:
        assert main(["local", "up", "--stack", STACK, "--config", "students=3"]) == 2
        err = capsys.readouterr().err
        assert "DemoRoleForEC2-student03" in err and "did not make it" in err and err.count("\n") == 1, err
    finally:
        iam.delete_role(RoleName="DemoRoleForEC2-student03")
        back = local.up({"students": "2"}, stack=STACK)
    assert identity(back.outputs) == identity(lab), "the class is as it was"
    assert verify(capsys)[0] == 0


def test_imdsv1_demo_adds_and_removes_the_third_host_and_a_role_rename_replaces(lab, capsys):
    try:
        with_third = local.up({"students": "2", "imdsv1Demo": "true"}, stack=STACK)
        assert [h.name for h in with_third.outputs.hosts if h.student == "student01"] == \
            ["no-role", "with-role", "imdsv1"]
        assert verify(capsys)[0] == 0
        renamed = local.up({"students": "2", "roleName": "LabRole"}, stack=STACK)
        assert identity(renamed.outputs) == identity(lab), "the third hosts are gone; the pairs untouched"
        assert renamed.outputs.host("with-role", "student01").role == "LabRole-student01"
        assert any(line.startswith("+- replace Role") for line in renamed.put_back), renamed.put_back
        code, report = verify(capsys)
        assert code == 0, [r for r in report["results"] if r["status"] != "pass"]
        roles = {r["RoleName"] for r in operator_clients(lab)("iam").list_roles()["Roles"]}
        assert "DemoRoleForEC2-student01" not in roles and "LabRole-student01" in roles
    finally:
        local.up({"students": "2"}, stack=STACK)
    assert verify(capsys)[0] == 0


def test_exercise_to_full_lab_in_place_gives_the_running_host_credentials(capsys):
    with stack_up("converge-ex", {"exercise": "true"}) as start:
        host = start.host("with-role")
        assert ssh(start, host, "aws iam list-users").returncode != 0
        main(["local", "preview", "--stack", "converge-ex", "--json"])
        planned = json.loads(capsys.readouterr().out)
        assert planned["config"] == {"exercise": {"from": "true", "to": None}}
        updates = [(s["op"], s["name"], s["changed"]) for s in planned["steps"] if s["op"] == "update"]
        assert updates == [("update", "student01-with-role-instance", ["iamInstanceProfile"])], planned["steps"]
        full = local.up({}, stack="converge-ex")
        assert identity(full.outputs) == identity(start), "the same instances: no restart, no replacement"
        assert full.outputs.host("with-role").role == "DemoRoleForEC2" and not full.outputs.exercise
        listing = ssh(full.outputs, host, "aws iam list-users --output json")
        assert listing.returncode == 0 and '"Users"' in listing.stdout, listing.stderr
        code, report = verify(capsys, "converge-ex")
        assert code == 0, [r for r in report["results"] if r["status"] != "pass"]


def test_an_up_interrupted_halfway_is_finished_by_the_next(lab, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "labs.cli", "local", "up", "--stack", STACK,
                                "--config", "students=2", "--config", "imdsv1Demo=true"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    time.sleep(2.0)  # the program is running: some hosts made, some not
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    try:
        done = local.up({"students": "2", "imdsv1Demo": "true"}, stack=STACK)
        assert [h.name for h in done.outputs.hosts].count("imdsv1") == 2
        assert identity(done.outputs)[:2] == identity(lab)[:2]
        assert verify(capsys)[0] == 0
        ec2 = operator_clients(lab)("ec2")
        live = [i["InstanceId"] for r in ec2.describe_instances(Filters=[
            {"Name": "tag:stack", "Values": [STACK]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"] for i in r["Instances"]]
        assert sorted(live) == sorted(h.instance_id for h in done.outputs.hosts), "nothing leaked, nothing doubled"
    finally:
        local.up({"students": "2"}, stack=STACK)

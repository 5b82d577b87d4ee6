"""`rolelab verify` on a real lab: all green, then each kind of check broken on purpose.

Runs on the session's shared lab (tests/offline/conftest.py); every test puts back what it broke.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from labs.cli.main import main
from labs.labcloud.paths import StackPaths
from labs.program.policies import SUPPORTED
from labs.provision import local
from labs.provision.operator import operator_clients
from tests.offline.conftest import cloud, host_status, ssh

CHECK_KINDS = {"imds-tokenless", "imds-credentials", "iam-list-users", "iam-list-roles", "iam-create-user",
               "sts-caller-identity", "nothing-stored"}


def verify(lab, capsys, *extra: str) -> tuple[int, dict]:
    code = main(["verify", "--local", "--stack", lab.stack, "--json", "--quiet", *extra])
    return code, json.loads(capsys.readouterr().out)


def by_check(report: dict, host: str) -> dict[str, dict]:
    return {r["check"]: r for r in report["results"] if r["host"] == host}


def test_a_healthy_lab_passes_every_check_kind_and_writes_junit(lab, capsys, tmp_path):
    junit = tmp_path / "r.xml"
    code, report = verify(lab, capsys, "--junit", str(junit))
    assert code == 0, [r for r in report["results"] if r["status"] != "pass"]
    assert {r["check"] for r in report["results"]} == CHECK_KINDS
    assert all(r["status"] == "pass" for r in report["results"])
    suites = ET.parse(junit).getroot()
    assert suites.tag == "testsuites" and suites.get("tests") == str(len(report["results"]))
    assert suites.get("failures") == "0" and suites.get("errors") == "0"
    cases = suites.findall("testsuite/testcase")
    assert len(cases) == len(report["results"]) == 13
    assert {c.get("classname") for c in cases} == {"student01.no-role", "student01.with-role"}


def test_an_extra_policy_is_caught_and_the_created_user_is_cleaned_up(lab, capsys, tmp_path):
    """A policy the expectation does not allow: the lab is wrong, exit 1."""
    iam = operator_clients(lab)("iam")
    iam.attach_role_policy(RoleName="DemoRoleForEC2", PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
    try:
        junit = tmp_path / "broken.xml"
        code, report = verify(lab, capsys, "--settle", "1", "--junit", str(junit))
    finally:
        iam.detach_role_policy(RoleName="DemoRoleForEC2", PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
    assert code == 1
    create = by_check(report, "with-role")["iam-create-user"]
    assert create["status"] == "fail" and create["expected"] == "AccessDenied"
    assert create["observed"].startswith("Success; user rolelab-probe-") and "was created (deleted again)" in create["observed"]
    assert [r["check"] for r in report["results"] if r["status"] != "pass"] == ["iam-create-user"]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName=create["observed"].split("user ")[1].split(" ")[0])
    suites = ET.parse(junit).getroot()
    failures = suites.findall("testsuite/testcase/failure")
    assert suites.get("failures") == "1" and len(failures) == 1
    assert "expected AccessDenied, observed Success" in failures[0].get("message")


def test_a_detached_policy_shows_expected_versus_observed(lab, capsys):
    iam = operator_clients(lab)("iam")
    arn = SUPPORTED["IAMReadOnlyAccess"].arn
    iam.detach_role_policy(RoleName="DemoRoleForEC2", PolicyArn=arn)
    try:
        code = main(["verify", "--local", "--stack", lab.stack, "--quiet", "--settle", "1"])
        text = capsys.readouterr().out
    finally:
        iam.attach_role_policy(RoleName="DemoRoleForEC2", PolicyArn=arn)
    assert code == 1
    block = text.split("FAIL student01/with-role")[1].split("\n\n")[0]
    assert "verify:iam-list-users" in text
    assert "command:  aws iam list-users --output json" in block
    assert "expected: Success" in block and "observed: AccessDenied" in block
    assert "stderr:   An error occurred (AccessDenied)" in block
    assert "-> exit 1 (the lab is wrong)" in text


def test_a_stopped_sshd_is_unreachable_exit_3_and_the_other_host_is_still_verified(lab, capsys):
    no_role = lab.host("no-role")
    control = cloud(lab)
    control.request("POST", "/faults/sshd", {"action": "kill", "instance_id": no_role.instance_id})
    try:
        code, report = verify(lab, capsys, "--connect-budget", "2")
    finally:
        control.request("POST", "/faults/sshd", {"action": "restart", "instance_id": no_role.instance_id})
        local.wait_for(lambda: host_status(lab, no_role)["state"] == "ready", 10)
    assert code == 3
    unreachable = [r for r in report["results"] if r["status"] == "unreachable"]
    assert unreachable and {r["host"] for r in unreachable} == {"no-role"}
    assert all("student01/no-role" in r["note"] and "connection refused" in r["note"] for r in unreachable)
    assert all(r["status"] == "pass" for r in report["results"] if r["host"] == "with-role")


def test_a_swapped_host_key_fails_hard_and_no_command_is_sent(lab, capsys):
    host = lab.host("with-role")
    control = cloud(lab)
    log = StackPaths.for_stack(lab.stack).host_dir(host.instance_id) / "sshd.log"
    control.request("POST", "/faults/sshd", {"action": "restart", "instance_id": host.instance_id, "host_key": "new"})
    local.wait_for(lambda: host_status(lab, host)["state"] == "ready", 10)
    accepted_before = log.read_text().count("Accepted publickey")
    try:
        code, report = verify(lab, capsys)
        assert log.read_text().count("Accepted publickey") == accepted_before, "a session was opened"
    finally:
        control.request("POST", "/faults/sshd", {"action": "restart", "instance_id": host.instance_id,
                                                 "host_key": "restore"})
        local.wait_for(lambda: host_status(lab, host)["state"] == "ready", 10)
    assert code == 1
    refused = [r for r in report["results"] if r["host"] == "with-role"]
    assert refused and all(r["observed"] == "host key mismatch" and r["status"] == "fail" for r in refused)
    assert "student01/with-role" in refused[0]["note"] and "no command was sent" in refused[0]["note"]
    assert all(r["status"] == "pass" for r in report["results"] if r["host"] == "no-role")


def test_every_check_kind_can_fail_and_imds_trouble_points_at_imds(lab, capsys):
    no_role, with_role = lab.host("no-role"), lab.host("with-role")
    ec2 = operator_clients(lab)("ec2")
    control = cloud(lab)
    ec2.modify_instance_metadata_options(InstanceId=no_role.instance_id, HttpTokens="optional")
    ssh(lab, no_role, "mkdir -p ~/.aws && printf '[default]\\naws_access_key_id = AKIAEXAMPLE\\n' > ~/.aws/credentials")
    control.request("POST", "/faults/imds", {"instance_id": with_role.instance_id, "mode": "down"})
    iam = operator_clients(lab)("iam")
    iam.attach_role_policy(RoleName="DemoRoleForEC2", PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
    try:
        code, report = verify(lab, capsys, "--settle", "0.5")
    finally:
        iam.detach_role_policy(RoleName="DemoRoleForEC2", PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
        control.request("POST", "/faults/imds", {"instance_id": with_role.instance_id, "mode": "up"})
        ssh(lab, no_role, "rm -rf ~/.aws")
        ec2.modify_instance_metadata_options(InstanceId=no_role.instance_id, HttpTokens="required")
    assert code == 1  # the no-role host's failures outrank the with-role host's silent IMDS (unreachable, 3)
    failed = {(r["host"], r["check"]): r for r in report["results"] if r["status"] != "pass"}
    assert {check for _, check in failed} == CHECK_KINDS
    assert failed[("no-role", "imds-tokenless")]["observed"] == "HTTP 200"
    assert failed[("no-role", "nothing-stored")]["observed"] == "stored: credentials-file"
    assert failed[("with-role", "imds-credentials")]["observed"].startswith("IMDS unreachable")
    assert failed[("with-role", "imds-credentials")]["status"] == "unreachable"
    for check in ("iam-list-users", "iam-list-roles", "sts-caller-identity"):
        result = failed[("with-role", check)]
        assert result["observed"] == "NoCredentials" and result["status"] == "unreachable"
        assert "IMDS" in result["hint"] and "not at IAM" in result["hint"], result["hint"]
    assert failed[("no-role", "iam-create-user")]["observed"] == "NoCredentials" or (
        ("with-role", "iam-create-user") in failed)
    # and the lab is healthy again afterwards
    code, report = verify(lab, capsys)
    assert code == 0, [r for r in report["results"] if r["status"] != "pass"]

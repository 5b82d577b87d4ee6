"""Drills and verify judge the lab as it is: drift found per student, with its repair line, and
the rest of the class drilled; hints from the cause; the walkthrough for every config."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from labs.cli.main import main
from labs.core.outputs import LabOutputs
from labs.lesson.account import profile_arn
from labs.program.policies import SUPPORTED
from labs.provision.operator import operator_clients
from tests.offline.conftest import stack_up

STACK = "drift"
READ_ONLY = SUPPORTED["IAMReadOnlyAccess"].arn


@pytest.fixture(scope="module")
def lab() -> Iterator[LabOutputs]:
    with stack_up(STACK, {"students": "3"}) as outputs:
        yield outputs


def run_cli(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--local", "--stack", STACK, "--json", "--quiet"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def by_student(report: dict) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for r in report["results"]:
        grouped.setdefault(r["student"], []).append(r)
    return grouped


def assert_others_drilled_green(report: dict, broken: str, drill: str) -> None:
    grouped = by_student(report)
    for student, mine in grouped.items():
        if student != broken:
            assert mine and all(r["status"] == "pass" for r in mine), (student, mine)
            assert any(r["phase"] == drill for r in mine), f"{student} was not drilled"
    assert set(grouped) == {"student01", "student02", "student03"}


def lend_profile_to_no_role(lab: LabOutputs, student: str) -> str:
    """The drift a by-hand association (or an interrupted attach-role drill) leaves: the role on the no-role host."""
    ec2 = operator_clients(lab)("ec2")
    with_role = lab.host("with-role", student)
    made = ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile_arn(ec2, with_role.instance_id)},
                                              InstanceId=lab.host("no-role", student).instance_id)
    return made["IamInstanceProfileAssociation"]["AssociationId"]


def drift_finding(report: dict, student: str) -> dict:
    found = [r for r in report["results"] if r["student"] == student and r["check"] == "lab-as-declared"]
    assert found, f"no 'lab not as declared' finding for {student}: {report['results']}"
    assert all(r["status"] == "fail" for r in found)
    return found[0]


def test_detach_policy_drill_with_a_policy_detached_by_hand(lab, capsys):
    iam = operator_clients(lab)("iam")
    role = lab.host("with-role", "student02").role
    iam.detach_role_policy(RoleName=role, PolicyArn=READ_ONLY)
    try:
        code, report = run_cli(capsys, "drill", "detach-policy")
        assert code == 1
        found = drift_finding(report, "student02")
        assert "IAMReadOnlyAccess is not attached" in found["observed"]
        assert f"aws iam attach-role-policy --role-name {role} --policy-arn {READ_ONLY}" in found["hint"]
        assert not [r for r in report["results"] if r["student"] == "student02" and r["phase"] == "detach-policy"
                    and r["check"] != "lab-as-declared"], "a student whose lab differs is not drilled"
        assert_others_drilled_green(report, "student02", "detach-policy")
        # verify names the cause, not IMDS (the drift is made already: no settle budget to wait out)
        code, verified = run_cli(capsys, "verify", "--settle", "0")
        assert code == 1
        failed = [r for r in verified["results"] if r["status"] == "fail"]
        assert failed and {r["student"] for r in failed} == {"student02"}
        assert all("attach-role-policy" in r["hint"] and "IMDS" not in r["hint"] for r in failed), failed
    finally:
        iam.attach_role_policy(RoleName=role, PolicyArn=READ_ONLY)


def test_attach_role_drill_with_a_role_associated_by_hand_on_the_no_role_host(lab, capsys):
    ec2 = operator_clients(lab)("ec2")
    association = lend_profile_to_no_role(lab, "student03")
    try:
        code, report = run_cli(capsys, "drill", "attach-role")
        assert code == 1, "a by-hand association is a finding, never an internal error (exit 70)"
        found = drift_finding(report, "student03")
        assert found["host"] == "no-role" and "declares without a role" in found["observed"]
        assert f"aws ec2 disassociate-iam-instance-profile --association-id {association}" in found["hint"]
        assert_others_drilled_green(report, "student03", "attach-role")
        code, verified = run_cli(capsys, "verify", "--settle", "0")  # the drift is made already
        failed = [r for r in verified["results"] if r["status"] == "fail"]
        assert code == 1 and failed and {(r["student"], r["host"]) for r in failed} == {("student03", "no-role")}
        assert all("disassociate-iam-instance-profile" in r["hint"] for r in failed), failed
    finally:
        ec2.disassociate_iam_instance_profile(AssociationId=association)


def test_second_role_drill_with_a_leftover_association_of_an_interrupted_drill(lab, capsys):
    """The lab cloud, like AWS (and moto's model), never holds two associations on one instance; the
    leftover an interrupted attach-role drill leaves is the role's profile still on the no-role host."""
    ec2 = operator_clients(lab)("ec2")
    association = lend_profile_to_no_role(lab, "student01")
    try:
        code, report = run_cli(capsys, "drill", "second-role")
        assert code == 1
        found = drift_finding(report, "student01")
        assert f"--association-id {association}" in found["hint"]
        assert_others_drilled_green(report, "student01", "second-role")
    finally:
        ec2.disassociate_iam_instance_profile(AssociationId=association)


def test_the_drill_repairs_what_it_left_when_the_undo_did_not_land(lab, capsys):
    """A restore that fails half-way (as after a client timeout) is finished by reading the lab back."""
    from labs.lesson import actions

    original = actions.DETACH_POLICY.apply

    def detach_without_undo(clients, target):
        original(clients, target)
        return lambda: None  # the re-attach "never ran"

    object.__setattr__(actions.DETACH_POLICY, "apply", detach_without_undo)  # a frozen dataclass: patch, then put back
    try:
        code, report = run_cli(capsys, "drill", "detach-policy", "--student", "student01")
    finally:
        object.__setattr__(actions.DETACH_POLICY, "apply", original)
    assert code == 0, report["results"]
    assert any("restored: policy IAMReadOnlyAccess is not attached" in e for e in report["events"]), report["events"]
    iam = operator_clients(lab)("iam")
    role = lab.host("with-role", "student01").role
    attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    assert attached == [READ_ONLY]

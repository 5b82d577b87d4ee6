"""The lesson as one model: actions, drills and stages name checks and state, never outcomes;
the state comparison finds drift with its repair line; hints come from what was observed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from labs.core.outputs import HostRecord, LabOutputs
from labs.lesson.actions import ACTIONS, Target
from labs.lesson.checks import derive_checks, finding, lab_policies
from labs.lesson.drills import DRILLS
from labs.lesson.findings import Status, judge, worst
from labs.lesson.stages import LESSON, ConsoleStep, HostStep
from labs.lesson.state import AccountView, Association, RoleView, problems, trusts_ec2
from labs.program.policies import SUPPORTED
from labs.verify.hints import IMDS_HINT, observed_hint, unreachable_hint

READ = SUPPORTED["IAMReadOnlyAccess"].arn
S3 = SUPPORTED["AmazonS3ReadOnlyAccess"].arn
PROFILE = "arn:aws:iam::123456789012:instance-profile/{}"


def record(name: str, role: str | None, student: str = "student01", policies=(READ,)) -> HostRecord:
    return HostRecord(student, name, f"i-{student[-2:]}{name[:2]}000000000000", "127.0.0.1", 2200, "root", role,
                      policies if role else (), "http://127.0.0.1:8111", "required")


def outputs(role: str = "DemoRoleForEC2", policies=(READ,)) -> LabOutputs:
    return LabOutputs("local", "us-east-1", "t", (record("no-role", None), record("with-role", role, policies=policies)))


def declared_view(out: LabOutputs) -> AccountView:
    with_role = out.host("with-role")
    return AccountView(
        roles={with_role.role: RoleView(with_role.role, True, with_role.policies, True)},
        associations={out.host("no-role").instance_id: [],
                      with_role.instance_id: [Association("iip-assoc-1", PROFILE.format(with_role.role))]},
        http_tokens={h.instance_id: "required" for h in out.hosts})


# -- the model is one place ------------------------------------------------------------------

def test_every_stage_step_names_a_check_that_derive_checks_makes():
    known = {c.id for h in outputs().hosts for c in derive_checks(h, (READ,), "us-east-1")}
    for stage in LESSON:
        for step in stage.steps:
            if isinstance(step, HostStep):
                assert step.check in known, f"stage {stage.title!r} names unknown check {step.check}"
            else:
                assert isinstance(step, ConsoleStep) and step.action in ACTIONS.values()


def test_every_drill_acts_through_the_one_action_table_and_watches_known_checks():
    known = {c.id for h in outputs().hosts for c in derive_checks(h, (READ,), "us-east-1")}
    for drill in DRILLS.values():
        assert drill.action is None or ACTIONS[drill.action.name] is drill.action
        assert set(drill.watch) | set(drill.restored) <= known, drill.name


@pytest.mark.parametrize("role, policies", [("DemoRoleForEC2", (READ,)), ("LabRole", (READ,)),
                                            ("DemoRoleForEC2", (S3,)), ("DemoRoleForEC2", (S3, READ))])
def test_expectations_after_an_action_follow_the_state_for_any_config(role, policies):
    target = Target(outputs(role, policies), "student01")
    after = {h.name: h for h in ACTIONS["detach-policy"].after(target)}
    assert after["with-role"].policies == policies[1:]
    want = {c.id: c.expected for c in derive_checks(after["with-role"], policies, "us-east-1")}
    assert want["iam-list-users"] == ("Success" if READ in policies[1:] else "AccessDenied")
    attached = {h.name: h for h in ACTIONS["attach-role"].after(target)}
    assert attached["no-role"].role == role and attached["no-role"].policies == policies
    assert {c.id: c.expected for c in derive_checks(attached["no-role"], policies, "us-east-1")}["sts-caller-identity"] == \
        f"assumed-role/{role}/{attached['no-role'].instance_id}"
    assert ACTIONS["attach-role"].cli_line(target).endswith(f"Name={role}")


def test_one_pass_rule_and_worst():
    assert judge("AccessDenied", "AccessDenied") is Status.PASS and judge("x", "y") is Status.FAIL
    host = record("no-role", None)
    check = derive_checks(host, (READ,), "us-east-1")[0]
    found = [finding(check, s, "x") for s in (Status.PASS, Status.UNREACHABLE, Status.FAIL)]
    assert worst(found) is Status.FAIL and worst(found[:2]) is Status.UNREACHABLE and worst([]) is None


# -- drift: the lab as it is against the lab as declared ---------------------------------------

def test_a_lab_as_declared_has_no_problems():
    out = outputs()
    assert problems(list(out.hosts), declared_view(out)) == []


def test_a_detached_policy_is_found_with_the_attach_line():
    out = outputs()
    view = declared_view(out)
    view.roles["DemoRoleForEC2"] = replace(view.roles["DemoRoleForEC2"], policies=())
    [problem] = problems(list(out.hosts), view)
    assert problem.host.name == "with-role" and "IAMReadOnlyAccess is not attached" in problem.what
    assert problem.repair == f"aws iam attach-role-policy --role-name DemoRoleForEC2 --policy-arn {READ}"


def test_a_profile_on_the_no_role_host_is_found_with_the_disassociate_line():
    out = outputs()
    view = declared_view(out)
    view.associations[out.host("no-role").instance_id] = [Association("iip-assoc-9", PROFILE.format("DemoRoleForEC2"))]
    [problem] = problems(list(out.hosts), view)
    assert problem.host.name == "no-role" and "declares without a role" in problem.what
    assert problem.repair == "aws ec2 disassociate-iam-instance-profile --association-id iip-assoc-9"


def test_a_second_association_and_a_missing_one_are_found():
    out = outputs()
    view = declared_view(out)
    with_role = out.host("with-role").instance_id
    view.associations[with_role].append(Association("iip-assoc-2", PROFILE.format("Other")))
    [extra] = problems(list(out.hosts), view)
    assert "second instance-profile association (Other)" in extra.what and "iip-assoc-2" in extra.repair
    view.associations[with_role] = []
    [missing] = problems(list(out.hosts), view)
    assert missing.repair.startswith(f"aws ec2 associate-iam-instance-profile --instance-id {with_role}")


def test_an_extra_policy_and_a_trust_without_ec2_are_found():
    out = outputs()
    view = declared_view(out)
    view.roles["DemoRoleForEC2"] = RoleView("DemoRoleForEC2", True, (READ, S3), trusts_ec2=False)
    found = {p.repair.split(" --")[0] for p in problems(list(out.hosts), view)}
    assert found == {"aws iam detach-role-policy", "aws iam update-assume-role-policy"}


@pytest.mark.parametrize("document, trusted", [
    ({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
     True),
    ({"Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]},
                     "Action": ["sts:AssumeRole"]}]}, True),
    ({"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
     False),
    ({"Statement": [{"Effect": "Deny", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
     False),
    ("%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws"
     ".com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D", True),  # IAM returns it URL-encoded
])
def test_trust_policy_reading(document, trusted):
    assert trusts_ec2(document) is trusted


# -- hints from what was observed ---------------------------------------------------------------

def _failed(host: HostRecord, check_id: str, observed: str):
    check = next(c for c in derive_checks(host, lab_policies((host,), host.student), "us-east-1") if c.id == check_id)
    return finding(check, Status.FAIL, observed)


def test_imds_hint_only_when_imds_did_not_answer():
    with_role, no_role = record("with-role", "DemoRoleForEC2"), record("no-role", None)
    assert observed_hint(_failed(with_role, "imds-credentials", "IMDS unreachable (no answer to PUT ...)")) == IMDS_HINT
    for f in (_failed(no_role, "imds-credentials", "role DemoRoleForEC2: credentials valid"),
              _failed(no_role, "iam-list-users", "Success"),
              _failed(with_role, "iam-list-users", "AccessDenied")):
        assert observed_hint(f) != IMDS_HINT, f
    assert "declared without a role" in observed_hint(_failed(no_role, "iam-list-users", "Success"))
    assert "list-attached-role-policies" in observed_hint(_failed(with_role, "iam-list-users", "AccessDenied"))


@pytest.mark.parametrize("mode, cause, words", [("local", "refused", "rolelab local status"),
                                                 ("aws", "timeout", "sshCidr"), ("aws", "refused", "booting")])
def test_unreachable_hint_names_the_cause_and_the_real_wait(mode, cause, words):
    f = _failed(record("no-role", None), "iam-list-users", "unreachable")
    hint = unreachable_hint(f, mode, cause, 7, 15.2)
    assert words in hint and "7 attempt(s) in 15.2 s" in hint and "IMDS" not in hint

"""The Pulumi program's intent, checked on what it registers under mocks."""

from __future__ import annotations

import yaml

from labs.program.policies import SUPPORTED
from tests.unit.conftest import (
    ATTACHMENT,
    INSTANCE,
    KEY_PAIR,
    PROFILE,
    ROLE,
    SECURITY_GROUP,
    host_kind,
    secret_value,
    trust_statements,
)


def test_the_role_trusts_only_ec2_to_assume_it(run_lab):
    run = run_lab()
    (role,) = run.of_type(ROLE)
    statements = trust_statements(role)
    assert statements == [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                           "Action": "sts:AssumeRole"}], f"{role.urn}: trust policy is {statements}"


def test_single_student_role_is_exactly_demo_role_for_ec2(run_lab):
    run = run_lab()
    assert [r.inputs["name"] for r in run.of_type(ROLE)] == ["DemoRoleForEC2"]
    assert [p.inputs["name"] for p in run.of_type(PROFILE)] == ["DemoRoleForEC2"]
    assert run.of_type(PROFILE)[0].inputs["role"] == "DemoRoleForEC2"


def test_one_attachment_per_policy(run_lab):
    policies = ["IAMReadOnlyAccess", "AmazonS3ReadOnlyAccess", "AmazonSSMManagedInstanceCore"]
    run = run_lab(policies=",".join(policies))
    attached = sorted(a.inputs["policyArn"] for a in run.of_type(ATTACHMENT))
    assert attached == sorted(SUPPORTED[p].arn for p in policies)
    assert {a.inputs["role"] for a in run.of_type(ATTACHMENT)} == {"DemoRoleForEC2"}


def test_instance_profile_only_on_role_hosts(run_lab):
    run = run_lab(imdsv1Demo="true")
    for instance in run.of_type(INSTANCE):
        profile = instance.inputs.get("iamInstanceProfile")
        if host_kind(instance) == "no-role":
            assert not profile, f"{instance.urn} must have no instance profile, has {profile!r}"
        else:
            assert profile == "DemoRoleForEC2", f"{instance.urn} must carry the role's profile"


def test_imdsv2_is_required_on_both_lesson_hosts(run_lab):
    run = run_lab()
    kinds = {host_kind(i): i.inputs["metadataOptions"] for i in run.of_type(INSTANCE)}
    assert set(kinds) == {"no-role", "with-role"}
    for kind, options in kinds.items():
        assert options["httpTokens"] == "required", f"{kind}: IMDSv2 must be required, got {options}"
        assert options["httpEndpoint"] == "enabled"


def test_only_the_imdsv1_demo_host_allows_tokenless_imds(run_lab):
    run = run_lab(imdsv1Demo="true")
    tokens = {host_kind(i): i.inputs["metadataOptions"]["httpTokens"] for i in run.of_type(INSTANCE)}
    assert tokens == {"no-role": "required", "with-role": "required", "imdsv1": "optional"}


def test_ssh_is_open_only_to_the_configured_cidr(run_lab):
    run = run_lab(sshCidr="203.0.113.7/32")
    (group,) = run.of_type(SECURITY_GROUP)
    ingress = group.inputs["ingress"]
    assert len(ingress) == 1, f"{group.urn}: exactly one ingress rule expected, got {ingress}"
    rule = ingress[0]
    assert (rule["protocol"], int(rule["fromPort"]), int(rule["toPort"])) == ("tcp", 22, 22)
    assert rule["cidrBlocks"] == ["203.0.113.7/32"]
    for rule in ingress:
        assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), f"{group.urn}: SSH open to the world"


def test_world_ssh_only_when_explicitly_allowed(run_lab):
    run = run_lab(sshCidr="0.0.0.0/0", allowWorldSsh="true")
    (group,) = run.of_type(SECURITY_GROUP)
    assert group.inputs["ingress"][0]["cidrBlocks"] == ["0.0.0.0/0"]


def test_root_volumes_are_encrypted_and_cost_guard_is_set(run_lab):
    run = run_lab(ttlHours="3")
    for instance in run.of_type(INSTANCE):
        assert instance.inputs["rootBlockDevice"]["encrypted"] is True, f"{instance.urn}: unencrypted root volume"
        assert instance.inputs["instanceInitiatedShutdownBehavior"] == "terminate"
        assert "# rolelab-ttl-hours: 3\n" in secret_value(instance.inputs["userData"]), f"{instance.urn}: no 3 h cost guard"


def test_ttl_zero_disables_the_cost_guard(run_lab):
    run = run_lab(ttlHours="0")
    for instance in run.of_type(INSTANCE):
        user_data = yaml.safe_load(secret_value(instance.inputs["userData"]))
        assert "write_files" not in user_data, f"{instance.urn}: ttlHours=0 must not add a timer"
        assert "# rolelab-ttl-hours: 0\n" in secret_value(instance.inputs["userData"]), "0 cancels a launched guard"
        assert instance.inputs["instanceInitiatedShutdownBehavior"] == "stop"


def test_instances_use_the_ssm_al2023_ami_and_the_key_pair(run_lab):
    run = run_lab(instanceType="t3.small")
    assert ("aws:ssm/getParameter:getParameter",
            {"name": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}) in run.invokes
    (pair,) = run.of_type(KEY_PAIR)
    for instance in run.of_type(INSTANCE):
        assert instance.inputs["ami"] == "ami-0resolvedatup000"
        assert instance.inputs["instanceType"] == "t3.small"
        assert instance.inputs["keyName"] == pair.inputs["keyName"] == "rolelab-unit"


def test_every_taggable_resource_carries_lab_student_and_stack(run_lab):
    run = run_lab(students="ana,bo", stack="fall")
    taggable = [r for r in run.registrations if r.custom and r.type.startswith("aws:") and r.type != ATTACHMENT]
    assert len(taggable) == 2 + 2 * 2 + 2 * 2  # sg + key, 2 roles + 2 profiles, 4 instances
    for reg in taggable:
        tags = reg.inputs.get("tags", {})
        assert tags.get("lab") == "rolelab", f"{reg.urn}: missing lab tag ({tags})"
        assert tags.get("stack") == "fall", f"{reg.urn}: missing stack tag ({tags})"
        assert tags.get("student") in ("ana", "bo", "shared"), f"{reg.urn}: bad student tag ({tags})"
    for instance in run.of_type(INSTANCE):
        assert instance.inputs["tags"]["student"] in instance.name


def test_every_resource_is_parented_by_a_component(run_lab):
    run = run_lab(imdsv1Demo="true")
    components = {r.urn for r in run.registrations if not r.custom}
    for reg in run.registrations:
        if reg.type == "rolelab:index:Classroom":
            continue
        assert reg.parent in components, f"{reg.urn} is not parented by a component (parent {reg.parent!r})"


def test_class_mode_gives_each_student_a_pair_and_an_own_role(run_lab):
    run = run_lab(students="3")
    instances = run.of_type(INSTANCE)
    assert len(instances) == 6
    roles = sorted(r.inputs["name"] for r in run.of_type(ROLE))
    assert roles == ["DemoRoleForEC2-student01", "DemoRoleForEC2-student02", "DemoRoleForEC2-student03"]
    for student in ("student01", "student02", "student03"):
        kinds = sorted(host_kind(i) for i in instances if i.name.startswith(f"{student}-"))
        assert kinds == ["no-role", "with-role"], f"{student}: hosts {kinds}"
        (with_role,) = [i for i in instances if i.name == f"{student}-with-role-instance"]
        assert with_role.inputs["iamInstanceProfile"] == f"DemoRoleForEC2-{student}"
    assert len(run.of_type(SECURITY_GROUP)) == 1 and len(run.of_type(KEY_PAIR)) == 1


def test_class_mode_with_named_students_sanitizes_names(run_lab):
    run = run_lab(students="Ana María, Bo Li", roleName="LabRole")
    assert sorted(r.inputs["name"] for r in run.of_type(ROLE)) == ["LabRole-ana-maria", "LabRole-bo-li"]
    assert sorted({h["student"] for h in run.outputs["hosts"]}) == ["ana-maria", "bo-li"]

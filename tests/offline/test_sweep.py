"""`rolelab sweep` against a real lab cloud: it deletes the lab's tagged resources and nothing else.

The tests share one stack and run in file order: the dry-run and refusal tests first (they
must leave everything in place), the deleting sweep last.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError, WaiterError

from labs.app import sweep
from labs.cli.main import build_parser
from labs.core.errors import ExitStatus, InfraError, UsageError
from labs.core.tags import lab_tags
from labs.labcloud.paths import StackPaths
from labs.program.policies import SUPPORTED
from labs.provision.operator import operator_clients
from tests.offline.conftest import stack_up

STACK = "sweep"
READ_ONLY = SUPPORTED["IAMReadOnlyAccess"].arn
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
LIST_BUCKETS = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}'
USER_KINDS = ("access-key", "login-profile", "user-managed-policy", "user-inline-policy", "user")
OTHER_LAB = {"lab": "other-lab", "stack": STACK, "student": "student01"}  # same stack tag, another lab


@dataclass
class Foreign:
    """What sweep must never touch: untagged, or tagged by another lab."""

    roles: list[str]
    profiles: list[str]
    groups: list[str]
    keys: list[str]
    instances: list[str]


@dataclass
class Cloud:
    clients: object
    account: str
    lab: dict[str, set[str]]  # kind -> ids the lab itself created (what sweep must find)
    foreign: Foreign


def _tags(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in values.items()]


def _add_foreign(clients, public_key: str) -> Foreign:
    ec2, iam = clients("ec2"), clients("iam")
    ami = clients("ssm").get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    foreign = Foreign([], [], [], [], [])
    for suffix, tags in (("untagged", {}), ("other", OTHER_LAB)):
        # A lookalike name: sweep goes by tags, never by names.
        role = f"rolelab-{suffix}-role"
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST, Tags=_tags(tags))
        iam.attach_role_policy(RoleName=role, PolicyArn=READ_ONLY)
        iam.put_role_policy(RoleName=role, PolicyName="inline", PolicyDocument=LIST_BUCKETS)
        profile = f"rolelab-{suffix}-profile"
        iam.create_instance_profile(InstanceProfileName=profile, Tags=_tags(tags))
        iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
        spec = lambda kind, tags=tags: [{"ResourceType": kind, "Tags": _tags(tags)}] if tags else []  # noqa: E731
        group = ec2.create_security_group(GroupName=f"rolelab-{suffix}-sg", Description="not the lab's",
                                          TagSpecifications=spec("security-group"))["GroupId"]
        key = f"rolelab-{suffix}-key"
        ec2.import_key_pair(KeyName=key, PublicKeyMaterial=public_key.encode(), TagSpecifications=spec("key-pair"))
        instance = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                     SecurityGroupIds=[group], KeyName=key, IamInstanceProfile={"Name": profile},
                                     TagSpecifications=spec("instance"))["Instances"][0]["InstanceId"]
        foreign.roles.append(role)
        foreign.profiles.append(profile)
        foreign.groups.append(group)
        foreign.keys.append(key)
        foreign.instances.append(instance)
    return foreign


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    with stack_up(STACK) as outputs:
        clients = operator_clients(outputs)
        # What the engine created, by type (not by tag: the tags are what is under test).
        created = json.loads(StackPaths.for_stack(STACK).resources.read_text())
        ids = lambda typ: {c["id"] for c in created if c["type"] == typ}  # noqa: E731
        lab = {"instance": ids("aws:ec2/instance:Instance"), "security-group": ids("aws:ec2/securityGroup:SecurityGroup"),
               "key-pair": ids("aws:ec2/keyPair:KeyPair"), "profile-role": {"DemoRoleForEC2"},
               "instance-profile": ids("aws:iam/instanceProfile:InstanceProfile"), "managed-policy": {READ_ONLY},
               "inline-policy": set(), "role": ids("aws:iam/role:Role"),
               **{kind: set() for kind in USER_KINDS}}
        assert [len(lab[k]) for k in ("instance", "security-group", "key-pair", "instance-profile", "role")] == [2, 1, 1, 1, 1]
        public_key = StackPaths.for_stack(STACK).private_key.with_suffix(".pub").read_text()
        account = clients("sts").get_caller_identity()["Account"]
        yield Cloud(clients, account, lab, _add_foreign(clients, public_key))


def _args(*argv: str) -> argparse.Namespace:
    """The real sweep flags, as `rolelab sweep` parses them."""
    return build_parser().parse_args(["sweep", *argv])


def _found(plan: sweep.SweepPlan) -> dict[str, set[str]]:
    return {kind: {r.id for r in plan.of(kind)} for kind in sweep.KINDS}


def _instance_states(cloud: Cloud, ids: list[str]) -> dict[str, str]:
    pages = cloud.clients("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in pages for i in r["Instances"]}


def assert_lab_untouched(cloud: Cloud) -> None:
    plan = sweep.find_lab_resources(cloud.clients)
    assert _found(plan) == cloud.lab, f"the lab's resources changed:\n{plan.render()}"


def assert_foreign_untouched(cloud: Cloud) -> None:
    ec2, iam = cloud.clients("ec2"), cloud.clients("iam")
    f = cloud.foreign
    roles = {r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]}
    profiles = {p["InstanceProfileName"]: [r["RoleName"] for r in p["Roles"]]
                for page in iam.get_paginator("list_instance_profiles").paginate() for p in page["InstanceProfiles"]}
    assert set(f.roles) <= roles, f"sweep deleted foreign roles {set(f.roles) - roles}"
    assert {p: profiles.get(p) for p in f.profiles} == dict(zip(f.profiles, ([r] for r in f.roles))), \
        "sweep deleted a foreign instance profile or removed its role"
    for role in f.roles:
        attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        assert [p["PolicyArn"] for p in attached] == [READ_ONLY], f"{role} lost its policy attachment"
        assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["inline"], f"{role} lost its inline policy"
    groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert set(f.groups) <= groups, f"sweep deleted foreign security groups {set(f.groups) - groups}"
    keys = {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert set(f.keys) <= keys, f"sweep deleted foreign key pairs {set(f.keys) - keys}"
    states = _instance_states(cloud, f.instances)
    assert set(states.values()) == {"running"}, f"sweep touched foreign instances: {states}"


def test_the_plan_is_exactly_the_labs_tagged_resources(cloud):
    plan = sweep.find_lab_resources(cloud.clients)
    assert _found(plan) == cloud.lab, plan.render()
    assert len(plan.resources) == 8  # 2 instances, 1 SG, 1 key pair, profile+membership, role+attachment
    every_id = {r.id for r in plan.resources} | {r.parent for r in plan.resources}
    f = cloud.foreign
    leaked = every_id & {*f.roles, *f.profiles, *f.groups, *f.keys, *f.instances}
    assert not leaked, f"untagged or other-lab resources in the plan: {leaked}"
    assert (plan.account, plan.region) == (cloud.account, "us-east-1")
    # --stack narrows by the stack tag
    assert _found(sweep.find_lab_resources(cloud.clients, stack=STACK)) == cloud.lab
    assert sweep.find_lab_resources(cloud.clients, stack="another-stack").resources == []


def test_dry_run_prints_the_plan_by_kind_and_deletes_nothing(cloud, capsys):
    assert sweep.run(_args("--local", "--stack", STACK)) == ExitStatus.OK
    out = capsys.readouterr().out
    assert f"account {cloud.account}" in out
    headings = re.findall(r"^  (\S.*): \d+$", out, flags=re.M)
    assert headings == [t for k, t in sweep.KINDS.items() if cloud.lab[k]], "kinds missing or out of deletion order"
    for ids in cloud.lab.values():
        for resource_id in ids:
            assert resource_id in out
    assert "rolelab-untagged" not in out and "rolelab-other" not in out
    assert "dry run: nothing was deleted" in out
    assert_lab_untouched(cloud)
    assert_foreign_untouched(cloud)


def test_a_lab_profile_used_by_an_instance_that_is_not_the_labs_is_warned_about_and_left_alone(cloud, capsys):
    iam, ec2 = cloud.clients("iam"), cloud.clients("ec2")
    tags = _tags(lab_tags(STACK))
    iam.create_role(RoleName="rolelab-shared-role", AssumeRolePolicyDocument=TRUST, Tags=tags)
    iam.create_instance_profile(InstanceProfileName="rolelab-shared-profile", Tags=tags)
    iam.add_role_to_instance_profile(InstanceProfileName="rolelab-shared-profile", RoleName="rolelab-shared-role")
    ami = cloud.clients("ssm").get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    user = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                             IamInstanceProfile={"Name": "rolelab-shared-profile"})["Instances"][0]["InstanceId"]
    try:
        assert sweep.run(_args("--local", "--stack", STACK)) == ExitStatus.OK
        out = capsys.readouterr().out
        warning = next(line for line in out.splitlines() if "WARNING" in line)
        assert "rolelab-shared-profile" in warning and user in warning and "rolelab-shared-role" in warning
        plan = sweep.find_lab_resources(cloud.clients, STACK)
        planned = {r.id for r in plan.resources} | {r.parent for r in plan.resources}
        assert not {"rolelab-shared-profile", "rolelab-shared-role"} & planned, plan.render()
        assert_lab_untouched(cloud)
    finally:
        ec2.terminate_instances(InstanceIds=[user])
        iam.remove_role_from_instance_profile(InstanceProfileName="rolelab-shared-profile", RoleName="rolelab-shared-role")
        iam.delete_instance_profile(InstanceProfileName="rolelab-shared-profile")
        iam.delete_role(RoleName="rolelab-shared-role")


def test_a_leftover_bad_practice_user_is_found_and_deleted_with_its_keys_password_and_policies(cloud):
    """An interrupted bad-practice drill leaves its tagged user (with a real access key) behind: sweep removes it."""
    from types import SimpleNamespace

    from labs.app import bad_practice

    user, _ = bad_practice.user_names("student01")
    key_id, _ = bad_practice._make_user_with_key(SimpleNamespace(operator=cloud.clients), user,
                                                 lab_tags(STACK, "student01"))
    iam = cloud.clients("iam")
    iam.create_login_profile(UserName=user, Password="Not-a-real-password-1")
    iam.put_user_policy(UserName=user, PolicyName="inline", PolicyDocument=LIST_BUCKETS)
    plan = sweep.find_lab_resources(cloud.clients, STACK)
    mine = [r for r in plan.resources if r.kind in USER_KINDS]
    assert [(r.kind, r.id) for r in mine] == [
        ("access-key", key_id), ("login-profile", "login-profile"),
        ("user-managed-policy", bad_practice.POWER_POLICY), ("user-inline-policy", "inline"), ("user", user)]
    result = sweep.execute(cloud.clients, sweep.SweepPlan(plan.account, plan.region, STACK, mine))
    assert not result.failed and len(result.deleted) == 5, result.render()
    assert user not in {u["UserName"] for u in iam.list_users()["Users"]}
    assert_lab_untouched(cloud)


@pytest.mark.parametrize("how", ["flag", "tty"])
def test_a_wrong_account_id_deletes_nothing_and_exits_2(cloud, monkeypatch, how):
    if how == "flag":
        args = _args("--local", "--stack", STACK, "--yes", "--confirm-account", "111122223333")
    else:
        args = _args("--local", "--stack", STACK, "--yes")
        monkeypatch.setattr("sys.stdin", _Terminal("111122223333\n"))
    with pytest.raises(UsageError) as refused:
        sweep.run(args)
    assert refused.value.exit_status == ExitStatus.USAGE == 2
    assert "does not match" in str(refused.value) and "\n" not in str(refused.value)
    assert_lab_untouched(cloud)
    assert_foreign_untouched(cloud)


def test_yes_without_a_terminal_needs_confirm_account(cloud, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{cloud.account}\n"))  # piped: not a typed confirmation
    with pytest.raises(UsageError, match="--confirm-account") as refused:
        sweep.run(_args("--local", "--stack", STACK, "--yes"))
    assert "\n" not in str(refused.value)
    assert_lab_untouched(cloud)


def test_aws_mode_needs_a_region():
    with pytest.raises(UsageError, match="--region") as refused:
        sweep.run(_args("--stack", STACK))
    assert refused.value.exit_status == 2 and "\n" not in str(refused.value)


def test_yes_with_the_account_typed_back_deletes_the_lab_and_only_the_lab(cloud, monkeypatch, capsys):
    # Last in this file: it deletes the lab that the tests above rely on.
    monkeypatch.setattr("sys.stdin", _Terminal(f"{cloud.account}\n"))
    try:
        status = sweep.run(_args("--local", "--stack", STACK, "--yes"))
    finally:
        assert_foreign_untouched(cloud)  # checked even if the sweep raised: the promise that matters most
    assert status == ExitStatus.OK
    assert "8 deleted, 0 already gone, 0 failed" in capsys.readouterr().out

    ec2, iam = cloud.clients("ec2"), cloud.clients("iam")
    states = _instance_states(cloud, sorted(cloud.lab["instance"]))
    assert set(states.values()) == {"terminated"}, states
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": sorted(cloud.lab["security-group"])}])["SecurityGroups"]
    assert not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": sorted(cloud.lab["key-pair"])}])["KeyPairs"]
    assert "DemoRoleForEC2" not in {p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]}
    assert "DemoRoleForEC2" not in {r["RoleName"] for r in iam.list_roles()["Roles"]}

    assert sweep.find_lab_resources(cloud.clients).resources == []  # terminated instances are not "found"
    assert sweep.run(_args("--local", "--stack", STACK)) == ExitStatus.OK
    assert "nothing to sweep" in capsys.readouterr().out


def test_a_stale_plan_is_idempotent_and_one_failure_does_not_stop_the_rest(cloud):
    """Runs after the sweep: re-executing an old plan finds everything gone; a blocked role is reported."""
    iam, ec2 = cloud.clients("iam"), cloud.clients("ec2")
    tags = _tags(lab_tags(STACK))
    # A lab role stuck in a profile that is not the lab's: sweep must not edit that profile, so the role stays.
    iam.create_role(RoleName="rolelab-stuck-role", AssumeRolePolicyDocument=TRUST, Tags=tags)
    iam.create_instance_profile(InstanceProfileName="someone-elses-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="someone-elses-profile", RoleName="rolelab-stuck-role")
    ec2.create_key_pair(KeyName="rolelab-late-key", TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
    stale = sweep.SweepPlan(cloud.account, "us-east-1", None, [sweep.Resource("role", "DemoRoleForEC2"),
                                                               sweep.Resource("key-pair", "no-such-key")])
    gone = sweep.execute(cloud.clients, stale, poll=0.2)
    assert not gone.failed and [r.id for r in gone.gone] == ["DemoRoleForEC2"]

    plan = sweep.find_lab_resources(cloud.clients)
    assert _found(plan)["role"] == {"rolelab-stuck-role"} and _found(plan)["key-pair"] == {"rolelab-late-key"}
    assert _found(plan)["profile-role"] == set(), "a membership in a foreign profile was planned"
    result = sweep.execute(cloud.clients, plan, poll=0.2)
    assert [r.id for r in result.deleted] == ["rolelab-late-key"]
    assert [(r.id, why.split(":")[0]) for r, why in result.failed] == [("rolelab-stuck-role", "DeleteConflict")]
    profile = iam.get_instance_profile(InstanceProfileName="someone-elses-profile")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["rolelab-stuck-role"], "sweep edited a foreign profile"
    assert_foreign_untouched(cloud)

    with pytest.raises(InfraError, match="1 of 1 deletions failed"):
        sweep.run(_args("--local", "--stack", STACK, "--yes", "--confirm-account", cloud.account))


def test_an_instance_that_never_terminates_is_reported_and_the_rest_still_tried():
    """The lab cloud terminates at once, so a stuck termination (AWS, some days) is faked here."""
    plan = sweep.SweepPlan("123456789012", "us-east-1", None, [
        sweep.Resource("instance", "i-stuck"), sweep.Resource("security-group", "sg-1"),
        sweep.Resource("key-pair", "k")])
    lines: list[str] = []
    clients = _StuckClients()
    started = time.monotonic()
    result = sweep.execute(clients, plan, progress=lines.append, wait_budget=1, poll=0.5, group_budget=1.5)
    assert [r.id for r in result.deleted] == ["k"]
    failed = {r.id: why for r, why in result.failed}
    assert failed["i-stuck"].startswith("still shutting-down after 1 s")
    assert failed["sg-1"].startswith("DependencyViolation")
    assert clients.group_deletes > 1, "a group still in use was not retried"
    assert time.monotonic() - started < 10, "the retry is not bounded"
    assert "waiting up to 1 s for 1 instance(s) to terminate" in lines


class _StuckClients:
    region = "us-east-1"
    group_deletes = 0

    def __call__(self, service: str):
        return self

    def get_caller_identity(self):
        return {"Account": "123456789012"}

    def terminate_instances(self, InstanceIds):  # noqa: N803 boto3's names
        return {}

    def get_waiter(self, name):
        class Waiter:
            def wait(self, **_):
                raise WaiterError(name, "Max attempts exceeded", {})
        return Waiter()

    def get_paginator(self, name):
        class Pages:
            def paginate(self, **_):
                return [{"Reservations": [{"Instances": [{"InstanceId": "i-stuck", "State": {"Name": "shutting-down"}}]}]}]
        return Pages()

    def delete_security_group(self, GroupId):  # noqa: N803
        self.group_deletes += 1
        raise ClientError({"Error": {"Code": "DependencyViolation", "Message": "in use by i-stuck"}}, "DeleteSecurityGroup")

    def delete_key_pair(self, KeyName):  # noqa: N803
        return {}


class _Terminal(io.StringIO):
    """Typed input on what looks like a terminal."""

    def isatty(self) -> bool:
        return True

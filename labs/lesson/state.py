"""The lab as it is, against the lab as declared: what differs, the command that repairs it, and the repair.

The operator reads each student's part of the account (read-only calls); `problems` compares
it with the declared hosts of the outputs. Drills run this before they act (a student whose
lab is not as declared is reported, not drilled), after they restore (what is left is said
and put back), and hints use it to name the cause of a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from labs.core.outputs import HostRecord
from labs.core.tags import lab_tags
from labs.core.trust import EC2_PRINCIPAL, EC2_TRUST, trusts_ec2

__all__ = ["AccountView", "Problem", "problems", "read_view", "trusts_ec2"]


@dataclass(frozen=True)
class RoleView:
    name: str
    exists: bool
    policies: tuple[str, ...] = ()
    trusts_ec2: bool = True
    profiles: tuple[str, ...] | None = None  # instance profiles holding the role (None: not read)


@dataclass(frozen=True)
class Association:
    association_id: str
    profile_arn: str

    @property
    def profile_name(self) -> str:
        return self.profile_arn.rsplit("/", 1)[-1]


@dataclass
class AccountView:
    """One student's slice of the account, as the operator reads it now."""

    roles: dict[str, RoleView] = field(default_factory=dict)
    associations: dict[str, list[Association]] = field(default_factory=dict)  # instance id -> live associations
    http_tokens: dict[str, str] = field(default_factory=dict)  # instance id -> required/optional


@dataclass(frozen=True)
class Problem:
    host: HostRecord
    what: str  # the difference, in words
    repair: str  # the aws CLI line that repairs it
    fix: Callable[[object], None] = field(compare=False, repr=False)  # does the repair with the given Clients

    def line(self) -> str:
        return f"{self.what}; repair: {self.repair}"


def _role_view(iam, role: str) -> RoleView:
    try:
        got = iam.get_role(RoleName=role)["Role"]
    except iam.exceptions.NoSuchEntityException:
        return RoleView(role, exists=False)
    pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role)
    attached = tuple(p["PolicyArn"] for page in pages for p in page["AttachedPolicies"])
    profiles = tuple(p["InstanceProfileName"] for p in
                     iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"])
    return RoleView(role, True, attached, trusts_ec2(got.get("AssumeRolePolicyDocument", {})), profiles)


def _role_views(iam, roles: list[str]) -> dict[str, RoleView]:
    """A class's roles in a few calls (GetAccountAuthorizationDetails); role by role where that is refused."""
    if len(roles) <= 2:
        return {role: _role_view(iam, role) for role in roles}
    try:
        pages = iam.get_paginator("get_account_authorization_details").paginate(Filter=["Role"])
        details = {d["RoleName"]: d for page in pages for d in page["RoleDetailList"]}
    except ClientError:
        return {role: _role_view(iam, role) for role in roles}
    views = {}
    for role in roles:
        found = details.get(role)
        views[role] = RoleView(role, exists=False) if found is None else RoleView(
            role, True, tuple(p["PolicyArn"] for p in found.get("AttachedManagedPolicies", [])),
            trusts_ec2(found.get("AssumeRolePolicyDocument", {})),
            tuple(p["InstanceProfileName"] for p in found.get("InstanceProfileList", [])))
    return views


def read_view(clients, hosts: list[HostRecord]) -> AccountView:
    """Read-only: the roles the hosts declare, and every host's associations and metadata options
    (a class in a handful of calls, not a few per host)."""
    iam, ec2 = clients("iam"), clients("ec2")
    view = AccountView(roles=_role_views(iam, list(dict.fromkeys(h.role for h in hosts if h.role))))
    ids = [h.instance_id for h in hosts]
    for chunk in (ids[i:i + 100] for i in range(0, len(ids), 100)):
        found = ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": chunk}]).get("IamInstanceProfileAssociations", [])
        for instance_id in chunk:
            view.associations[instance_id] = [
                Association(a["AssociationId"], a["IamInstanceProfile"]["Arn"]) for a in found
                if a["InstanceId"] == instance_id and a.get("State") in ("associating", "associated")]
        reservations = ec2.describe_instances(InstanceIds=chunk)["Reservations"]
        for instance in (i for r in reservations for i in r["Instances"]):
            view.http_tokens[instance["InstanceId"]] = instance.get("MetadataOptions", {}).get("HttpTokens", "")
    return view


def problems(hosts: list[HostRecord], view: AccountView, profile_for: dict[str, str] | None = None,
             stack: str = "") -> list[Problem]:
    """Every way the account differs from the declared hosts, in the order their repairs must run.
    profile_for maps a role to the instance-profile name that holds it (the lab's: named like the
    role); `stack` tags what a repair creates."""
    found: list[Problem] = []
    for host in hosts:
        found += _role_problems(host, view, stack) + _association_problems(host, view, (profile_for or {}))
        tokens = view.http_tokens.get(host.instance_id)
        if tokens and tokens != host.http_tokens:
            found.append(Problem(
                host, f"{host.label} has IMDS http_tokens={tokens}, declared {host.http_tokens}",
                f"aws ec2 modify-instance-metadata-options --instance-id {host.instance_id} "
                f"--http-tokens {host.http_tokens}",
                lambda c, h=host: c("ec2").modify_instance_metadata_options(InstanceId=h.instance_id,
                                                                           HttpTokens=h.http_tokens)))
    unique: dict[tuple[str, str], Problem] = {}
    for problem in found:  # a role shared by two hosts is one problem, repaired once
        unique.setdefault((problem.what.replace(problem.host.label, ""), problem.repair), problem)
    return list(unique.values())


def _role_problems(host: HostRecord, view: AccountView, stack: str) -> list[Problem]:
    role = view.roles.get(host.role) if host.role else None
    if role is None:
        return []
    if not role.exists:
        return [Problem(host, f"role {host.role} does not exist",
                        f"aws iam create-role --role-name {host.role} --assume-role-policy-document file://trust-ec2.json"
                        f" (then its policies and instance profile; `rolelab local up` or `pulumi up` does all)",
                        lambda c, h=host: create_role(c, h, stack))]
    found = []
    if role.profiles == ():
        found.append(Problem(host, f"no instance profile holds role {role.name}",
                             f"aws iam create-instance-profile --instance-profile-name {role.name} && aws iam "
                             f"add-role-to-instance-profile --instance-profile-name {role.name} --role-name {role.name}",
                             lambda c, h=host: create_profile(c, h, stack)))
    for arn in host.policies:
        if arn not in role.policies:
            found.append(Problem(host, f"policy {arn.rsplit('/', 1)[-1]} is not attached to role {role.name}",
                                 f"aws iam attach-role-policy --role-name {role.name} --policy-arn {arn}",
                                 lambda c, r=role.name, a=arn: c("iam").attach_role_policy(RoleName=r, PolicyArn=a)))
    for arn in role.policies:
        if arn not in host.policies:
            found.append(Problem(host, f"role {role.name} has policy {arn.rsplit('/', 1)[-1]} attached, "
                                 "which the lab does not declare",
                                 f"aws iam detach-role-policy --role-name {role.name} --policy-arn {arn}",
                                 lambda c, r=role.name, a=arn: c("iam").detach_role_policy(RoleName=r, PolicyArn=a)))
    if not role.trusts_ec2:
        found.append(Problem(host, f"role {role.name}'s trust policy does not allow {EC2_PRINCIPAL} to assume it",
                             f"aws iam update-assume-role-policy --role-name {role.name} --policy-document "
                             "file://trust-ec2.json (Principal Service ec2.amazonaws.com, Action sts:AssumeRole)",
                             lambda c, r=role.name: c("iam").update_assume_role_policy(
                                 RoleName=r, PolicyDocument=json.dumps(EC2_TRUST))))
    return found


def _tags(host: HostRecord, stack: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in lab_tags(stack or "local", host.student, host.role).items()]


def create_profile(clients, host: HostRecord, stack: str) -> None:
    iam = clients("iam")
    iam.create_instance_profile(InstanceProfileName=host.role, Tags=_tags(host, stack))
    iam.add_role_to_instance_profile(InstanceProfileName=host.role, RoleName=host.role)


def create_role(clients, host: HostRecord, stack: str) -> None:
    """The role as the program makes it: EC2's trust, the declared policies, an instance profile of its name."""
    iam = clients("iam")
    iam.create_role(RoleName=host.role, AssumeRolePolicyDocument=json.dumps(EC2_TRUST), Tags=_tags(host, stack))
    for arn in host.policies:
        iam.attach_role_policy(RoleName=host.role, PolicyArn=arn)
    create_profile(clients, host, stack)


def _association_problems(host: HostRecord, view: AccountView, profile_for: dict[str, str]) -> list[Problem]:
    live = view.associations.get(host.instance_id, [])
    disassociate = lambda a: (  # noqa: E731
        f"aws ec2 disassociate-iam-instance-profile --association-id {a.association_id}",
        lambda c, a=a: c("ec2").disassociate_iam_instance_profile(AssociationId=a.association_id))
    if not host.role:
        return [Problem(host, f"instance profile {a.profile_name} is associated with {host.label} "
                        f"({host.instance_id}), which the lab declares without a role", *disassociate(a))
                for a in live]
    profile = profile_for.get(host.role, host.role)
    if not live:
        return [Problem(host, f"no instance profile is associated with {host.label} ({host.instance_id})",
                        f"aws ec2 associate-iam-instance-profile --instance-id {host.instance_id} "
                        f"--iam-instance-profile Name={profile}",
                        lambda c, h=host, p=profile: c("ec2").associate_iam_instance_profile(
                            IamInstanceProfile={"Name": p}, InstanceId=h.instance_id))]
    keep = next((a for a in live if a.profile_name == profile), live[0])
    return [Problem(host, f"{host.label} has a second instance-profile association ({a.profile_name})",
                    *disassociate(a)) for a in live if a is not keep]

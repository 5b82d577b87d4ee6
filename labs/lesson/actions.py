"""The lesson's console actions, written once: what a person clicks, the aws CLI line, the API
calls, the undo, and the declared state of the hosts afterwards (so expectations follow).

Drills, the walkthrough and `check` all take their actions from ACTIONS. An action acts on
one student's hosts; `requires` names the parts of the declared state it depends on, which
the caller confirms from the account before acting (labs.lesson.state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from labs.core.outputs import HostRecord, LabOutputs
from labs.lesson.account import profile_arn


@dataclass(frozen=True)
class Target:
    """One student's hosts, as declared."""

    outputs: LabOutputs
    student: str

    @property
    def no_role(self) -> HostRecord:
        return self.outputs.host("no-role", self.student)

    @property
    def with_role(self) -> HostRecord:
        return self.outputs.host("with-role", self.student)

    def hosts(self) -> list[HostRecord]:
        return [h for h in self.outputs.hosts if h.student == self.student]

    def cli_values(self) -> dict[str, str]:
        role = self.with_role
        return {"role": role.role or "", "policy": (role.policies or ("",))[0],
                "no_role_id": self.no_role.instance_id, "with_role_id": role.instance_id}


Undo = Callable[[], None]


@dataclass(frozen=True)
class Action:
    name: str
    says: str  # the console action, in words
    cli: str  # the aws CLI equivalent; {role} {policy} {no_role_id} {with_role_id} are filled in
    apply: Callable[[object, Target], Undo | None]  # (clients, target) -> undo
    after: Callable[[Target], tuple[HostRecord, ...]]  # the hosts' declared state once it is done
    refused_with: str | None = None  # the API error code the lesson expects instead of success

    def cli_line(self, target: Target) -> str:
        return self.cli.format(**target.cli_values())


def _detach_first_policy(clients, target: Target) -> Undo:
    host, iam = target.with_role, clients("iam")
    arn = host.policies[0]
    iam.detach_role_policy(RoleName=host.role, PolicyArn=arn)
    return lambda: iam.attach_role_policy(RoleName=host.role, PolicyArn=arn)


def _attach_role_to_no_role(clients, target: Target) -> Undo:
    ec2 = clients("ec2")
    arn = profile_arn(ec2, target.with_role.instance_id)
    made = ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": arn}, InstanceId=target.no_role.instance_id)
    association_id = made["IamInstanceProfileAssociation"]["AssociationId"]
    return lambda: ec2.disassociate_iam_instance_profile(AssociationId=association_id)


def _second_association(clients, target: Target) -> Undo:
    """Expected to raise the API's refusal (IncorrectState); if it does not, the undo removes the extra."""
    ec2 = clients("ec2")
    host = target.with_role
    made = ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile_arn(ec2, host.instance_id)},
                                              InstanceId=host.instance_id)
    return lambda: ec2.disassociate_iam_instance_profile(
        AssociationId=made["IamInstanceProfileAssociation"]["AssociationId"])


def _allow_imdsv1(clients, target: Target) -> Undo:
    ec2, host = clients("ec2"), target.with_role
    ec2.modify_instance_metadata_options(InstanceId=host.instance_id, HttpTokens="optional")
    return lambda: ec2.modify_instance_metadata_options(InstanceId=host.instance_id, HttpTokens=host.http_tokens)


def _with(target: Target, host: HostRecord, **changes) -> tuple[HostRecord, ...]:
    """The student's hosts with one of them changed."""
    return tuple(replace(h, **changes) if h == host else h for h in target.hosts())


DETACH_POLICY = Action(
    "detach-policy", "IAM > Roles > the role > Permissions > Remove the policy",
    "aws iam detach-role-policy --role-name {role} --policy-arn {policy}", _detach_first_policy,
    lambda t: _with(t, t.with_role, policies=t.with_role.policies[1:]))
ATTACH_ROLE = Action(
    "attach-role", "EC2 > the no-role instance > Actions > Security > Modify IAM role > the role",
    "aws ec2 associate-iam-instance-profile --instance-id {no_role_id} --iam-instance-profile Name={role}",
    _attach_role_to_no_role,
    lambda t: _with(t, t.no_role, role=t.with_role.role, policies=t.with_role.policies))
SECOND_ASSOCIATION = Action(
    "second-association", "EC2 > the with-role instance > associate a second instance profile",
    "aws ec2 associate-iam-instance-profile --instance-id {with_role_id} --iam-instance-profile Name={role}",
    _second_association, lambda t: tuple(t.hosts()), refused_with="IncorrectState")
ALLOW_IMDSV1 = Action(
    "allow-imdsv1", "EC2 > the with-role instance > Modify instance metadata options > IMDSv2 optional",
    "aws ec2 modify-instance-metadata-options --instance-id {with_role_id} --http-tokens optional",
    _allow_imdsv1, lambda t: _with(t, t.with_role, http_tokens="optional"))

ACTIONS: dict[str, Action] = {a.name: a for a in (DETACH_POLICY, ATTACH_ROLE, SECOND_ASSOCIATION, ALLOW_IMDSV1)}

"""The lesson as data: stages, what each shows, the exact commands, what must be seen.

Host steps run a shell command on a host of the outputs and expect an outcome; console
steps are what a person does in the AWS console, done by the operator with boto3 (the
equivalent aws CLI line is shown). `rolelab demo --step` narrates these stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from labs.operator import Clients, profile_arn
from labs.outputs import LabOutputs

# An action returns an "undo" to run when the stage is over (or None).
Action = Callable[[Clients, LabOutputs, str], Callable[[], None] | None]


@dataclass(frozen=True)
class HostStep:
    host: str  # no-role, with-role or imdsv1
    command: str  # may use {imds} for the host's IMDS endpoint
    expect: str  # an Outcome value for aws commands, or text the output must contain
    eventual: bool = False  # IAM propagates: retry within the settle budget


@dataclass(frozen=True)
class ConsoleStep:
    says: str  # the console action, in words
    cli: str  # the equivalent aws CLI line; {role} {policy} {no_role_id} {with_role_id} are filled in
    action: Action
    refused_with: str | None = None  # the API error code the lesson expects instead of success


@dataclass(frozen=True)
class Stage:
    title: str
    explain: str
    steps: tuple[HostStep | ConsoleStep, ...] = field(default_factory=tuple)


def detach_first_policy(clients: Clients, outputs: LabOutputs, student: str):
    host = outputs.host("with-role", student)
    iam = clients("iam")
    iam.detach_role_policy(RoleName=host.role, PolicyArn=host.policies[0])
    return lambda: iam.attach_role_policy(RoleName=host.role, PolicyArn=host.policies[0])


def attach_role_to_no_role(clients: Clients, outputs: LabOutputs, student: str):
    ec2 = clients("ec2")
    no_role, with_role = outputs.host("no-role", student), outputs.host("with-role", student)
    association = ec2.associate_iam_instance_profile(
        IamInstanceProfile={"Arn": profile_arn(ec2, with_role.instance_id)}, InstanceId=no_role.instance_id)
    association_id = association["IamInstanceProfileAssociation"]["AssociationId"]
    return lambda: ec2.disassociate_iam_instance_profile(AssociationId=association_id)


def second_association(clients: Clients, outputs: LabOutputs, student: str):
    """Raises the API's refusal (IncorrectState): the walkthrough shows it as the observed outcome."""
    ec2 = clients("ec2")
    host = outputs.host("with-role", student)
    made = ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile_arn(ec2, host.instance_id)},
                                              InstanceId=host.instance_id)
    return lambda: ec2.disassociate_iam_instance_profile(
        AssociationId=made["IamInstanceProfileAssociation"]["AssociationId"])


def allow_imdsv1(clients: Clients, outputs: LabOutputs, student: str):
    ec2 = clients("ec2")
    host = outputs.host("with-role", student)
    ec2.modify_instance_metadata_options(InstanceId=host.instance_id, HttpTokens="optional")
    return lambda: ec2.modify_instance_metadata_options(InstanceId=host.instance_id, HttpTokens="required")


TOKEN = "TOKEN=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' {imds}/latest/api/token)"

LESSON: tuple[Stage, ...] = (
    Stage("Before and after",
          "Two instances, the same AMI. One has no IAM role, the other has DemoRoleForEC2. The aws CLI "
          "looks for credentials in the environment, in ~/.aws, and finally in the instance metadata "
          "service, where a role's temporary credentials live.",
          (HostStep("no-role", "aws iam list-users", "NoCredentials"),
           HostStep("with-role", "aws iam list-users", "Success"))),
    Stage("Read-only means read-only",
          "IAMReadOnlyAccess lets the role read IAM: listing roles works, creating a user does not.",
          (HostStep("with-role", "aws iam list-roles --max-items 3", "Success"),
           HostStep("with-role", "aws iam create-user --user-name intruder", "AccessDenied"))),
    Stage("Detaching the policy",
          "Permissions live in the role, not on the instance: take the policy away and the same "
          "instance loses the right, after IAM propagates the change (seconds on AWS).",
          (ConsoleStep("IAM > Roles > the role > Permissions > Remove the policy",
                       "aws iam detach-role-policy --role-name {role} --policy-arn {policy}",
                       detach_first_policy),
           HostStep("with-role", "aws iam list-users", "AccessDenied", eventual=True))),
    Stage("Attaching a role to a running instance",
          "No restart, no new instance: Actions > Security > Modify IAM role, and the running "
          "no-role host gets credentials within seconds. Its instance id stays the same.",
          (ConsoleStep("EC2 > the no-role instance > Actions > Security > Modify IAM role > DemoRoleForEC2",
                       "aws ec2 associate-iam-instance-profile --instance-id {no_role_id} --iam-instance-profile Name={role}",
                       attach_role_to_no_role),
           HostStep("no-role", "aws iam list-users", "Success", eventual=True),
           HostStep("no-role", "aws sts get-caller-identity", "Success"))),
    Stage("One role per instance",
          "An instance has at most one instance profile. Attaching a second one is refused; to change "
          "roles you replace the association.",
          (ConsoleStep("EC2 > the with-role instance > associate a second instance profile",
                       "aws ec2 associate-iam-instance-profile --instance-id {with_role_id} --iam-instance-profile Name={role}",
                       second_association, refused_with="IncorrectState"),)),
    Stage("IMDSv1 against IMDSv2",
          "With IMDSv2 required, a request without a session token gets 401. The token comes from a PUT "
          "that a forwarding proxy cannot make for an attacker. IMDSv1 (tokens optional) answers anyone.",
          (HostStep("with-role", "curl -s -o /dev/null -w '%{{http_code}}\\n' {imds}/latest/meta-data/iam/security-credentials/", "401"),
           HostStep("with-role", TOKEN + "; curl -s -H \"X-aws-ec2-metadata-token: $TOKEN\" "
                    "{imds}/latest/meta-data/iam/security-credentials/", "DemoRoleForEC2"),
           ConsoleStep("EC2 > the with-role instance > Modify instance metadata options > IMDSv2 optional",
                       "aws ec2 modify-instance-metadata-options --instance-id {with_role_id} --http-tokens optional",
                       allow_imdsv1),
           HostStep("with-role", "curl -s {imds}/latest/meta-data/iam/security-credentials/", "DemoRoleForEC2"))),
    Stage("Nothing stored",
          "No access key was ever written: no ~/.aws/credentials, no AWS_ACCESS_KEY_ID. The keys the "
          "role hands out expire and are replaced before they do.",
          (HostStep("with-role", "ls -A ~/.aws 2>&1; env | grep -c '^AWS_ACCESS_KEY_ID=' || true", "No such file"),
           HostStep("with-role", TOKEN + "; curl -s -H \"X-aws-ec2-metadata-token: $TOKEN\" "
                    "{imds}/latest/meta-data/iam/security-credentials/$(curl -s -H \"X-aws-ec2-metadata-token: "
                    "$TOKEN\" {imds}/latest/meta-data/iam/security-credentials/) | grep -E '\"(Code|Expiration)\"'",
                    "Expiration"))),
)

"""Exercise mode, offline: each student gets a console, the rights of a sandbox account, and nothing else.

A console is an IAM user in the lab cloud with an access key, tagged with its student and
the role name the lesson asks that student for. Its policy grants what the lesson's steps
need: make and manage roles and instance profiles, pass them, attach AWS managed policies,
associate, replace and disassociate instance profiles, and read EC2. No IAM users, no access
keys. The lab cloud scopes it to the student's own instances and role names on the request
path (labs/labcloud/scope.py), since moto's IAM enforcement reads only `Action`.
The key is written 0600 in the stack's state directory, and never onto a host.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from labs.core.errors import UsageError
from labs.core.outputs import LabOutputs
from labs.core.tags import CONSOLE_TAG, PREFIX_TAG, lab_tags

CONSOLE_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "RolesAndProfiles", "Effect": "Allow", "Resource": "*", "Action": [
        "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:ListRoles", "iam:UpdateRole",
        "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole", "iam:ListRoleTags",
        "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies",
        "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:ListRolePolicies",
        "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:GetInstanceProfile",
        "iam:ListInstanceProfiles", "iam:ListInstanceProfilesForRole", "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile", "iam:PassRole", "iam:ListPolicies", "iam:GetPolicy",
        "iam:GetPolicyVersion"]},
    {"Sid": "AttachToOwnInstances", "Effect": "Allow", "Resource": "*", "Action": [
        "ec2:Describe*", "ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:DisassociateIamInstanceProfile"]},
    {"Sid": "WhoAmI", "Effect": "Allow", "Resource": "*", "Action": ["sts:GetCallerIdentity"]},
]}


@dataclass(frozen=True)
class Console:
    student: str
    user: str
    access_key_id: str
    secret_access_key: str
    endpoint: str
    region: str

    def environment(self) -> dict[str, str]:
        """What points the real aws CLI at the lab cloud, as this student."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region, "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_EC2_METADATA_DISABLED": "true", "ROLELAB_CONSOLE": self.student}


def user_name(student: str) -> str:
    return f"rolelab-console-{student}"[:64]


def console_file(state_dir: Path, student: str) -> Path:
    return state_dir / "consoles" / f"{student}.json"


def make_consoles(operator, outputs: LabOutputs, state_dir: Path, only_missing: bool = False) -> list[Console]:
    """One console per student (idempotent: an existing user gets a fresh key, unless `only_missing`:
    then students who have one keep it, so a console in use goes on working)."""
    iam = operator("iam")
    made = []
    for student in outputs.students():
        if only_missing and console_file(state_dir, student).exists():
            continue
        role, _ = outputs.target(student)
        name = user_name(student)
        tags = {**lab_tags(outputs.stack, student, name), CONSOLE_TAG: student, PREFIX_TAG: role}
        try:
            iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        except iam.exceptions.EntityAlreadyExistsException:
            for old in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=name, AccessKeyId=old["AccessKeyId"])
        iam.put_user_policy(UserName=name, PolicyName="rolelab-console", PolicyDocument=json.dumps(CONSOLE_POLICY))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        console = Console(student, name, key["AccessKeyId"], key["SecretAccessKey"], outputs.endpoint or "",
                          outputs.region)
        path = console_file(state_dir, student)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(console.__dict__, handle)
        made.append(console)
    return made


def read_console(state_dir: Path, outputs: LabOutputs, student: str | None) -> Console:
    if not outputs.exercise:
        raise UsageError(f"stack {outputs.stack!r} is not in exercise mode, so it has no student console; bring "
                         "one up with `rolelab local up --config exercise=true`")
    students = outputs.students()
    if student is None and len(students) > 1:
        raise UsageError(f"stack {outputs.stack!r} has {len(students)} students: pick one with --student "
                         f"({', '.join(students)})")
    chosen = student or students[0]
    if chosen not in students:
        raise UsageError(f"--student {chosen!r}: no such student in stack {outputs.stack!r} "
                         f"(students: {', '.join(students)})")
    try:
        return Console(**json.loads(console_file(state_dir, chosen).read_text()))
    except (OSError, ValueError, TypeError):
        raise UsageError(f"the console of {chosen} is missing in {state_dir}; run `rolelab local up` again "
                         "to re-create it") from None

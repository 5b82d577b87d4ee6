"""DemoRoleForEC2: a role only EC2 may assume, its managed policies, and its instance profile."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from labs.core.errors import ConfigError
from labs.core.tags import LAB_TAG, LAB_TAG_VALUE

EC2_TRUST_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }],
})


@dataclass
class LabRoleArgs:
    role_name: str
    policy_arns: tuple[str, ...]
    tags: dict[str, str]
    checked_name: pulumi.Input[str] | None = None  # the name once checked_role_names found it free or ours


def refuse_foreign(role_name: str, tags: dict[str, str] | None, stack: str) -> str:
    """The role's name, unless a role of that name exists that this stack did not make."""
    tags = tags or {}
    if tags.get(LAB_TAG) == LAB_TAG_VALUE and tags.get("stack") == stack:
        return role_name
    raise ConfigError("roleName", role_name, f"a role of that name already exists in the account and stack "
                      f"{stack!r} did not make it (IAM names are account-wide)",
                      f"pulumi config set rolelab:roleName DemoRoleForEC2-{stack} (or delete the old role)")


def checked_role_names(role_names: list[str], stack: str,
                       opts: pulumi.InvokeOutputOptions | None = None) -> dict[str, pulumi.Output[str]]:
    """Each name, looked up first: pulumi up would otherwise fail on EntityAlreadyExists, or adopt nothing clearly.

    One listing for the whole class (ListRoles pages through the account once, not once per student); only a
    name that exists is read again, for the tags that say whose it is."""
    pattern = "^(?:" + "|".join(re.escape(name) for name in role_names) + ")$"
    existing = aws.iam.get_roles_output(name_regex=pattern, opts=opts).names

    def checked(role_name: str) -> pulumi.Output[str]:
        def check(names: list[str] | None) -> pulumi.Output[str] | str:
            if role_name not in (names or ()):
                return role_name
            found = aws.iam.get_role_output(name=role_name, opts=opts)
            return found.tags.apply(lambda tags: refuse_foreign(role_name, tags, stack))

        return existing.apply(check)

    return {name: checked(name) for name in role_names}


class LabRole(pulumi.ComponentResource):
    role: aws.iam.Role
    attachments: list[aws.iam.RolePolicyAttachment]
    instance_profile: aws.iam.InstanceProfile

    def __init__(self, name: str, args: LabRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rolelab:index:LabRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.checked_name or args.role_name,
            assume_role_policy=EC2_TRUST_POLICY,
            description="Lets EC2 instances of the rolelab lesson call AWS without stored keys",
            tags=args.tags,
            opts=child,
        )
        self.attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{arn.rsplit('/', 1)[-1]}",
                role=self.role.name,
                policy_arn=arn,
                opts=child,
            )
            for arn in args.policy_arns
        ]
        # Named like the role, as the console does, so students recognise it.
        self.instance_profile = aws.iam.InstanceProfile(
            f"{name}-profile",
            name=args.role_name,
            role=self.role.name,
            tags=args.tags,
            opts=child,
        )
        self.register_outputs({
            "role_name": self.role.name,
            "role_arn": self.role.arn,
            "instance_profile": self.instance_profile.name,
        })

"""DemoRoleForEC2: a role only EC2 may assume, its managed policies, and its instance profile."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

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


class LabRole(pulumi.ComponentResource):
    role: aws.iam.Role
    attachments: list[aws.iam.RolePolicyAttachment]
    instance_profile: aws.iam.InstanceProfile

    def __init__(self, name: str, args: LabRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rolelab:index:LabRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
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

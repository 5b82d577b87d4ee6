"""LabHost: one EC2 instance of the lesson, with or without the role."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pulumi
import pulumi_aws as aws


class HostKind(str, Enum):
    NO_ROLE = "no-role"  # the "before": no instance profile at all
    WITH_ROLE = "with-role"  # the "after": the role's instance profile
    IMDSV1 = "imdsv1"  # the role, with tokens optional, for the IMDSv1 curl demo

    @property
    def has_role(self) -> bool:
        return self is not HostKind.NO_ROLE

    @property
    def http_tokens(self) -> str:
        return "optional" if self is HostKind.IMDSV1 else "required"


def cost_guard_user_data(ttl_hours: int) -> str | None:
    """A shutdown timer; with shutdown behaviour 'terminate', it ends the instance and its bill."""
    if ttl_hours == 0:
        return None
    return (
        "#!/bin/bash\n"
        f"# rolelab cost guard: power off after {ttl_hours} h; the instance then terminates.\n"
        f"shutdown -h +{ttl_hours * 60} 'rolelab: lab TTL of {ttl_hours} h reached'\n"
    )


@dataclass
class LabHostArgs:
    kind: HostKind
    ami_id: pulumi.Input[str]
    instance_type: str
    key_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str] | None
    ttl_hours: int
    tags: dict[str, str]


class LabHost(pulumi.ComponentResource):
    instance: aws.ec2.Instance

    def __init__(self, name: str, args: LabHostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rolelab:index:LabHost", name, None, opts)
        self.kind = args.kind
        self.instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.ami_id,
            instance_type=args.instance_type,
            key_name=args.key_name,
            vpc_security_group_ids=[args.security_group_id],
            iam_instance_profile=args.instance_profile,
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": args.kind.http_tokens,
                "http_put_response_hop_limit": 1,
            },
            root_block_device={"encrypted": True, "volume_type": "gp3"},
            instance_initiated_shutdown_behavior="terminate" if args.ttl_hours else "stop",
            user_data=cost_guard_user_data(args.ttl_hours),
            associate_public_ip_address=True,
            tags=args.tags,
            volume_tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"instance_id": self.instance.id, "public_ip": self.instance.public_ip})

"""LabHost: one EC2 instance of the lesson, with or without the role."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pulumi
import pulumi_aws as aws
import yaml

from labs.program.costguard import PER_BOOT_PATH, TTL_MARKER, guard_script


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
    """cloud-config that installs the per-boot cost guard (labs/program/costguard.py); None for ttlHours 0."""
    if ttl_hours == 0:
        return None
    config = {"write_files": [{"path": PER_BOOT_PATH, "permissions": "0755", "owner": "root:root",
                               "content": guard_script(ttl_hours)}]}
    # The marker line is what the guard reads back from IMDS at each boot.
    return f"#cloud-config\n{TTL_MARKER}{ttl_hours}\n" + yaml.dump(config, Dumper=_BlockDumper, sort_keys=False)


class _BlockDumper(yaml.SafeDumper):
    """Scripts and keys as readable `|` blocks in the user data (what a person sees in the console)."""


_BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


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
    subnet_id: pulumi.Input[str] | None = None


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
            subnet_id=args.subnet_id,
            iam_instance_profile=args.instance_profile,
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": args.kind.http_tokens,
                "http_put_response_hop_limit": 1,
            },
            root_block_device={"encrypted": True, "volume_type": "gp3"},
            instance_initiated_shutdown_behavior="terminate" if args.ttl_hours else "stop",
            user_data=cost_guard_user_data(args.ttl_hours),
            # Deliberately false: a new ttlHours stops and starts the instance (same id, same class),
            # and the per-boot guard then re-reads it; replacing would end a running class.
            user_data_replace_on_change=False,
            associate_public_ip_address=True,
            tags=args.tags,
            volume_tags=args.tags,
            # The AMI is read from SSM at every up and `ami` forces replacement: pin the first one, so a
            # new AMI release never replaces a running class (roll forward: docs/LAB.md, troubleshooting).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )
        self.register_outputs({"instance_id": self.instance.id, "public_ip": self.instance.public_ip})

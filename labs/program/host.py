"""LabHost: one EC2 instance of the lesson, with or without the role."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls
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


def host_user_data(ttl_hours: int, host_key: tuple[str, str] | None = None,
                   authorized_keys: tuple[str, ...] = ()) -> str:
    """The instance's cloud-config: its SSH host key (cloud-init's `ssh_keys`), extra login keys
    (`ssh_authorized_keys`, for ec2-user next to the key pair's) and the per-boot cost guard
    (labs/program/costguard.py; none for ttlHours 0). host_key is (private, public) in OpenSSH form."""
    config: dict = {}
    if host_key:
        config["ssh_keys"] = {"ed25519_private": host_key[0].strip() + "\n", "ed25519_public": host_key[1].strip()}
    if authorized_keys:
        config["ssh_authorized_keys"] = [key.strip() for key in authorized_keys]
    # The marker line is what the guard reads back from IMDS at each boot (0 there cancels a shutdown
    # a guard installed at launch had scheduled).
    body = yaml.dump(config, Dumper=_BlockDumper, sort_keys=False) if config else ""
    return f"#cloud-config\n{TTL_MARKER}{ttl_hours}\n" + body + _guard_files(ttl_hours)


@functools.lru_cache(maxsize=4)
def _guard_files(ttl_hours: int) -> str:
    """The guard's `write_files` block, the same for every host of a class: rendered once, not once per
    host (YAML's scalar analysis of the script is most of a late student's program time otherwise)."""
    if not ttl_hours:
        return ""
    return yaml.dump({"write_files": [{"path": PER_BOOT_PATH, "permissions": "0755", "owner": "root:root",
                                       "content": guard_script(ttl_hours)}]}, Dumper=_BlockDumper, sort_keys=False)


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
    # Keys ec2-user accepts besides the key pair's (the instructor's, when a student brings their own).
    authorized_keys: tuple[pulumi.Input[str], ...] = ()


class LabHost(pulumi.ComponentResource):
    instance: aws.ec2.Instance

    def __init__(self, name: str, args: LabHostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rolelab:index:LabHost", name, None, opts)
        self.kind = args.kind
        # The SSH host key, made here so it is known (and pinned from the outputs) before the host boots;
        # its private half is a secret in the state and reaches the instance through cloud-init.
        self.host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519",
                                       opts=pulumi.ResourceOptions(parent=self))
        self.host_public_key = self.host_key.public_key_openssh.apply(lambda key: " ".join(key.split()[:2]))
        user_data = pulumi.Output.all(self.host_key.private_key_openssh, self.host_key.public_key_openssh,
                                      *args.authorized_keys).apply(
            lambda v: host_user_data(args.ttl_hours, (v[0], v[1]), tuple(v[2:])))
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
            # A secret: it holds the host's private key (encrypted in the state, [secret] in diffs; on EC2
            # readable only with ec2:DescribeInstanceAttribute, or from the instance's own IMDS).
            user_data=pulumi.Output.secret(user_data),
            # Deliberately false: a new ttlHours (or instructor key) stops and starts the instance (same id,
            # same class), and the per-boot guard then re-reads it; replacing would end a running class.
            # The host key part never changes by itself (the tls key is made once and kept in the state),
            # and cloud-init applies ssh_keys once per instance, so a stop/start keeps the pinned key.
            user_data_replace_on_change=False,
            associate_public_ip_address=True,
            tags=args.tags,
            volume_tags=args.tags,
            # The AMI is read from SSM at every up and `ami` forces replacement: pin the first one, so a
            # new AMI release never replaces a running class (roll forward: docs/LAB.md, troubleshooting).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )
        self.register_outputs({"instance_id": self.instance.id, "public_ip": self.instance.public_ip})

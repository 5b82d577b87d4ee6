"""RoleLab: one student's before/after pair. Classroom: the whole class on one network."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from labs.core.outputs import AWS_IMDS_ENDPOINT, AWS_LOGIN_USER, host_dict
from labs.core.tags import lab_tags
from labs.program.config import LabConfig
from labs.program.host import HostKind, LabHost, LabHostArgs
from labs.program.network import LabNetwork, LabNetworkArgs
from labs.program.role import LabRole, LabRoleArgs, checked_role_names


@dataclass
class RoleLabArgs:
    student: str
    config: LabConfig
    network: LabNetwork
    checked_role_name: pulumi.Input[str] | None = None  # the role's name once looked up (Classroom does it)


class RoleLab(pulumi.ComponentResource):
    """A student's own role (so a drill on it never touches a classmate) and their hosts."""

    def __init__(self, name: str, args: RoleLabArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rolelab:index:RoleLab", name, None, opts)
        config, student = args.config, args.student
        self.student = student
        self.role_name = config.role_name_for(student)
        self.policy_arns = config.policy_arns()
        # Exercise mode: the student makes the role, its profile and the association (the lesson's work).
        self.role = None if config.exercise else LabRole(
            f"{name}-iam",
            LabRoleArgs(self.role_name, self.policy_arns, lab_tags(config.stack, student, self.role_name),
                        checked_name=args.checked_role_name),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # A student who brings their own key gets a key pair of it. EC2 gives an instance exactly one key pair
        # (fixed at launch: changing key_name replaces the instance), so the instructor's key reaches those
        # hosts through cloud-init's ssh_authorized_keys instead: both log in as ec2-user.
        own_key = config.student_keys.get(student)
        self.key_pair = aws.ec2.KeyPair(
            f"{name}-key",
            key_name=config.student_key_name(student),
            public_key=own_key,
            tags=lab_tags(config.stack, student, config.student_key_name(student)),
            # A fixed name whose public_key forces replacement: delete the old pair first, or the new one collides.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        ) if own_key else None
        kinds = [HostKind.NO_ROLE, HostKind.WITH_ROLE] + ([HostKind.IMDSV1] if config.imdsv1_demo else [])
        self.hosts = [
            LabHost(
                f"{name}-{kind.value}",
                LabHostArgs(
                    kind=kind,
                    ami_id=args.network.ami_id,
                    instance_type=config.instance_type,
                    key_name=(self.key_pair or args.network.key_pair).key_name,
                    authorized_keys=(config.ssh_public_key,) if self.key_pair else (),
                    security_group_id=args.network.security_group.id,
                    subnet_id=args.network.subnet_id,
                    instance_profile=self.role.instance_profile.name if kind.has_role and self.role else None,
                    ttl_hours=config.ttl_hours,
                    tags=lab_tags(config.stack, student, f"rolelab-{config.stack}-{name}-{kind.value}"),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for kind in kinds
        ]
        self.register_outputs({"role_name": self.role.role.name if self.role else None})

    def host_records(self) -> list[pulumi.Output[dict]]:
        def record(host: LabHost) -> pulumi.Output[dict]:
            role = self.role.role.name if host.kind.has_role and self.role else None
            return pulumi.Output.all(host.instance.id, host.instance.public_ip, role, host.host_public_key).apply(
                lambda values, kind=host.kind: host_dict(
                    student=self.student,
                    name=kind.value,
                    instance_id=values[0],
                    address=values[1],
                    port=22,
                    user=AWS_LOGIN_USER,
                    role=values[2],
                    policies=list(self.policy_arns) if kind.has_role and self.role else [],
                    imds_endpoint=AWS_IMDS_ENDPOINT,
                    http_tokens=kind.http_tokens,
                    host_key=values[3],
                )
            )

        return [record(host) for host in self.hosts]


class Classroom(pulumi.ComponentResource):
    """N students, each with a RoleLab, sharing one security group, key pair and AMI."""

    def __init__(self, name: str, config: LabConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rolelab:index:Classroom", name, None, opts)
        self.config = config
        self.network = LabNetwork(
            f"{name}-shared",
            LabNetworkArgs(
                ssh_cidr=config.ssh_cidr,
                ssh_public_key=config.ssh_public_key,
                key_name=config.key_name,
                tags=lab_tags(config.stack, None, f"rolelab-{config.stack}"),
                instance_type=config.instance_type,
                vpc_id=config.vpc_id,
                subnet_id=config.subnet_id,
                region=config.region,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Exercise mode makes no roles; otherwise every name is checked in one lookup for the class.
        checked = {} if config.exercise else checked_role_names(
            [config.role_name_for(s) for s in config.students], config.stack, pulumi.InvokeOutputOptions(parent=self))
        self.labs = [
            RoleLab(student, RoleLabArgs(student, config, self.network, checked.get(config.role_name_for(student))),
                    opts=pulumi.ResourceOptions(parent=self))
            for student in config.students
        ]
        self.register_outputs({"students": list(config.students)})

    def host_records(self) -> list[pulumi.Output[dict]]:
        return [record for lab in self.labs for record in lab.host_records()]

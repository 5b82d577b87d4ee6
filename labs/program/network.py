"""What a class shares: SSH ingress from one CIDR, the key pair, and the AMI."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

AL2023_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


@dataclass
class LabNetworkArgs:
    ssh_cidr: str
    ssh_public_key: str
    key_name: str
    tags: dict[str, str]


class LabNetwork(pulumi.ComponentResource):
    security_group: aws.ec2.SecurityGroup
    key_pair: aws.ec2.KeyPair
    ami_id: pulumi.Output[str]

    def __init__(self, name: str, args: LabNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rolelab:index:LabNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cidr_field = "ipv6_cidr_blocks" if ":" in args.ssh_cidr else "cidr_blocks"
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-ssh",
            description="rolelab: SSH from the configured CIDR only",
            ingress=[{
                "protocol": "tcp", "from_port": 22, "to_port": 22,
                cidr_field: [args.ssh_cidr], "description": "SSH from rolelab:sshCidr",
            }],
            egress=[{
                "protocol": "-1", "from_port": 0, "to_port": 0,
                "cidr_blocks": ["0.0.0.0/0"], "description": "AWS APIs and package mirrors",
            }],
            tags=args.tags,
            opts=child,
        )
        self.key_pair = aws.ec2.KeyPair(
            f"{name}-key",
            key_name=args.key_name,
            public_key=args.ssh_public_key,
            tags=args.tags,
            opts=child,
        )
        self.ami_id = aws.ssm.get_parameter_output(
            name=AL2023_AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)
        ).value
        self.register_outputs({
            "security_group_id": self.security_group.id,
            "key_name": self.key_pair.key_name,
            "ami_id": self.ami_id,
        })

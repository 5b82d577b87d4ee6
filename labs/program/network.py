"""What a class shares: the VPC and subnet, SSH ingress from one CIDR, the key pair, and the AMI."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from labs.core.errors import ConfigError

AL2023_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


@dataclass
class LabNetworkArgs:
    ssh_cidr: str
    ssh_public_key: str
    key_name: str
    tags: dict[str, str]
    instance_type: str = "t3.micro"
    vpc_id: str = ""  # empty: the region's default VPC and one of its default subnets
    subnet_id: str = ""
    region: str = "us-east-1"


def _default_vpc(ids: list[str] | None, region: str) -> str:
    if not ids:
        raise ConfigError("vpcId", "", f"there is no default VPC in {region} (some organisations delete them)",
                          "run `aws ec2 create-default-vpc`, or set rolelab:vpcId and rolelab:subnetId")
    return ids[0]


def _public_subnet(ids: list[str] | None, vpc_id: str, instance_type: str) -> str:
    if not ids:
        raise ConfigError("subnetId", "", f"the default VPC {vpc_id} has no default subnet that maps public IPs "
                          f"in a zone offering {instance_type}",
                          "run `aws ec2 create-default-subnet --availability-zone AZ`, or set rolelab:subnetId")
    return sorted(ids)[0]


class LabNetwork(pulumi.ComponentResource):
    security_group: aws.ec2.SecurityGroup
    key_pair: aws.ec2.KeyPair
    ami_id: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]

    def __init__(self, name: str, args: LabNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rolelab:index:LabNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        lookup = pulumi.InvokeOutputOptions(parent=self)
        if args.vpc_id:
            self.vpc_id, self.subnet_id = pulumi.Output.from_input(args.vpc_id), pulumi.Output.from_input(args.subnet_id)
        else:
            # The default VPC, and a default subnet (public IPs on) in a zone that offers the instance type.
            vpcs = aws.ec2.get_vpcs_output(filters=[{"name": "isDefault", "values": ["true"]}], opts=lookup)
            self.vpc_id = vpcs.ids.apply(lambda ids: _default_vpc(ids, args.region))
            zones = aws.ec2.get_instance_type_offerings_output(
                filters=[{"name": "instance-type", "values": [args.instance_type]}],
                location_type="availability-zone", opts=lookup).locations

            def subnets(values: list) -> pulumi.Output[list[str]]:
                vpc_id, offered = values
                return aws.ec2.get_subnets_output(filters=[
                    {"name": "vpc-id", "values": [vpc_id]},
                    {"name": "default-for-az", "values": ["true"]},
                    {"name": "map-public-ip-on-launch", "values": ["true"]},
                    {"name": "availability-zone", "values": sorted(offered or ["none"])},
                ], opts=lookup).ids

            found = pulumi.Output.all(self.vpc_id, zones).apply(subnets)
            self.subnet_id = pulumi.Output.all(found, self.vpc_id).apply(
                lambda v: _public_subnet(v[0], v[1], args.instance_type))
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-ssh",
            description="rolelab: SSH from the configured CIDR only",
            vpc_id=self.vpc_id,
            ingress=[{
                "protocol": "tcp", "from_port": 22, "to_port": 22,
                "cidr_blocks": [args.ssh_cidr], "description": "SSH from rolelab:sshCidr",
            }],
            egress=[{
                "protocol": "-1", "from_port": 0, "to_port": 0,
                "cidr_blocks": ["0.0.0.0/0"], "description": "AWS APIs and package mirrors",
            }],
            tags=args.tags,
            opts=child,
        )
        # A fixed name whose public_key forces replacement: delete the old pair first, or the new one collides.
        self.key_pair = aws.ec2.KeyPair(
            f"{name}-key",
            key_name=args.key_name,
            public_key=args.ssh_public_key,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.ami_id = aws.ssm.get_parameter_output(
            name=AL2023_AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)
        ).value
        self.register_outputs({
            "security_group_id": self.security_group.id,
            "key_name": self.key_pair.key_name,
            "ami_id": self.ami_id,
            "vpc_id": self.vpc_id,
            "subnet_id": self.subnet_id,
        })

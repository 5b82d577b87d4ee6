"""The local engine: Pulumi mocks that *apply* each resource to the lab cloud through boto3.

`new_resource` is what `pulumi up`'s provider would do: create the thing, return its id and
state. Resources arrive in dependency order (the SDK waits for inputs), so the profile
exists before the instance that names it. A type we do not know is an error, never a skip.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pulumi

from labs.core.errors import ExitStatus, RolelabError
from labs.labcloud.aws_clients import ClientFactory
from labs.provision.hostkeys import PRIVATE_KEY, private_key_state


class UnsupportedResource(RolelabError):
    pass


class ApplyError(RolelabError):
    """Creating a resource in the lab cloud failed; like `pulumi up`, nothing after it is attempted."""

    exit_status = ExitStatus.UNREACHABLE


@dataclass
class Created:
    type: str
    name: str
    id: str
    inputs: dict = field(default_factory=dict)  # what the program declared: a later `up` compares with it
    state: dict = field(default_factory=dict)  # what it answered with


def _tags(inputs: dict) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in (inputs.get("tags") or {}).items()]


def revealed(value: Any) -> Any:
    """Inputs with Pulumi's secret wrappers taken off (a provider sees the plain value; the state keeps it secret)."""
    if isinstance(value, dict):
        if value.get(pulumi.runtime.rpc._special_sig_key) == pulumi.runtime.rpc._special_secret_sig:
            return revealed(value.get("value"))
        return {k: revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revealed(v) for v in value]
    return value


def _autoname(logical: str) -> str:
    return f"{logical}-{secrets.token_hex(4)[:7]}"  # as Pulumi autonames: name plus a random suffix


class LocalEngine(pulumi.runtime.Mocks):
    SERVICES = ("ec2", "iam", "ssm")  # the boto3 clients it applies resources through

    def __init__(self, clients: ClientFactory, account_id: str):
        self.clients = clients
        self.account_id = account_id
        self.created: list[Created] = []
        self.failure: RolelabError | None = None
        self._lock = threading.Lock()
        self._roles_lock = threading.Lock()
        self._roles_read: dict[str, dict] | None = None
        self._apply: dict[str, Callable[[str, dict], tuple[str, dict]]] = {
            "aws:iam/role:Role": self._role,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._attachment,
            "aws:iam/instanceProfile:InstanceProfile": self._instance_profile,
            "aws:ec2/securityGroup:SecurityGroup": self._security_group,
            "aws:ec2/keyPair:KeyPair": self._key_pair,
            "aws:ec2/instance:Instance": self._instance,
            PRIVATE_KEY: self._private_key,
        }

    # -- the Mocks interface --------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if not args.custom:
            return "", {}  # component resources exist only in the program
        # An exception raised here would leave the program's outputs unresolved forever, so the
        # first failure is kept, later resources are skipped, and raise_failure() reports it.
        if self.failure is not None:
            return f"skipped-{args.name}", {}
        try:
            apply = self._apply.get(args.typ)
            if apply is None:
                raise UnsupportedResource(
                    f"local mode cannot create {args.typ} ({args.name}); supported: {', '.join(sorted(self._apply))}")
            resource_id, state = apply(args.name, revealed(dict(args.inputs)))
        except RolelabError as error:
            self.failure = self.failure or error
            return f"failed-{args.name}", {}
        except Exception as error:  # noqa: BLE001 boto3/botocore errors become one line
            self.failure = self.failure or ApplyError(f"creating {args.typ} {args.name!r} in the lab cloud failed: {error}")
            return f"failed-{args.name}", {}
        with self._lock:
            self.created.append(Created(args.typ, args.name, resource_id, dict(args.inputs), state))
        return resource_id, state

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if self.failure is not None:
            return {}
        lookups: dict[str, Callable[[dict], dict]] = {
            "aws:ssm/getParameter:getParameter": self._parameter,
            "aws:ec2/getVpcs:getVpcs": self._vpcs,
            "aws:ec2/getSubnets:getSubnets": self._subnets,
            "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": self._offerings,
            "aws:iam/getRoles:getRoles": self._roles,
            "aws:iam/getRole:getRole": self._get_role,
        }
        lookup = lookups.get(args.token)
        if lookup is None:
            self.failure = UnsupportedResource(f"local mode cannot answer the data source {args.token}")
            return {}
        try:
            return lookup(dict(args.args))
        except Exception as error:  # noqa: BLE001 kept, like new_resource's failures
            self.failure = ApplyError(f"reading {args.token.rsplit(':', 1)[-1]} in the lab cloud failed: {error}")
            return {}

    # -- one function per data source ----------------------------------------------------------

    def _parameter(self, a: dict) -> dict:
        parameter = self.clients("ssm").get_parameter(Name=a["name"])["Parameter"]
        return {"id": parameter["Name"], "name": parameter["Name"], "value": parameter["Value"],
                "type": parameter["Type"], "arn": parameter.get("ARN", ""), "version": parameter.get("Version", 1)}

    def _vpcs(self, a: dict) -> dict:
        vpcs = self.clients("ec2").describe_vpcs(Filters=_filters(a))["Vpcs"]
        return {"id": self.clients.region, "ids": [v["VpcId"] for v in vpcs]}

    def _subnets(self, a: dict) -> dict:
        subnets = self.clients("ec2").describe_subnets(Filters=_filters(a))["Subnets"]
        return {"id": self.clients.region, "ids": [s["SubnetId"] for s in subnets]}

    def _offerings(self, a: dict) -> dict:
        offers = self.clients("ec2").describe_instance_type_offerings(
            LocationType=a.get("locationType", "region"), Filters=_filters(a))["InstanceTypeOfferings"]
        return {"id": self.clients.region, "locations": [o["Location"] for o in offers],
                "instanceTypes": [o["InstanceType"] for o in offers], "locationTypes": [a.get("locationType")] * len(offers)}

    def _roles(self, a: dict) -> dict:
        pattern = re.compile(a.get("nameRegex") or ".*")
        roles = [r for page in self.clients("iam").get_paginator("list_roles").paginate() for r in page["Roles"]
                 if pattern.search(r["RoleName"])]
        return {"id": self.account_id, "names": [r["RoleName"] for r in roles], "arns": [r["Arn"] for r in roles]}

    def _get_role(self, a: dict) -> dict:
        role = self._roles_with_tags().get(a["name"]) or self.clients("iam").get_role(RoleName=a["name"])["Role"]
        return {"id": role["RoleName"], "name": role["RoleName"], "arn": role["Arn"],
                "tags": {t["Key"]: t["Value"] for t in role.get("Tags", [])}}

    def _roles_with_tags(self) -> dict[str, dict]:
        """Every role with its tags, read once per run: a class asks GetRole for each student's role, and one
        GetAccountAuthorizationDetails answers them all (a role made after it is still asked for by name)."""
        with self._roles_lock:
            if self._roles_read is None:
                pages = self.clients("iam").get_paginator("get_account_authorization_details").paginate(Filter=["Role"])
                self._roles_read = {r["RoleName"]: r for page in pages for r in page["RoleDetailList"]}
            return self._roles_read

    def created_json(self) -> str:
        return record_json(self.created)


    # -- one function per resource type ------------------------------------------------------

    def _role(self, logical: str, i: dict) -> tuple[str, dict]:
        name = i.get("name") or _autoname(logical)
        role = self.clients("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=i["assumeRolePolicy"],
            Description=i.get("description", ""), Tags=_tags(i))["Role"]
        return name, {**i, "name": name, "arn": role["Arn"], "uniqueId": role["RoleId"]}

    def _attachment(self, logical: str, i: dict) -> tuple[str, dict]:
        self.clients("iam").attach_role_policy(RoleName=i["role"], PolicyArn=i["policyArn"])
        return f"{i['role']}-{_autoname('att')[-7:]}", i

    def _instance_profile(self, logical: str, i: dict) -> tuple[str, dict]:
        iam = self.clients("iam")
        name = i.get("name") or _autoname(logical)
        profile = iam.create_instance_profile(InstanceProfileName=name, Tags=_tags(i))["InstanceProfile"]
        if i.get("role"):
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=i["role"])
        return name, {**i, "name": name, "arn": profile["Arn"], "uniqueId": profile["InstanceProfileId"]}

    def _security_group(self, logical: str, i: dict) -> tuple[str, dict]:
        ec2 = self.clients("ec2")
        name = i.get("name") or _autoname(logical)
        group_id = ec2.create_security_group(
            GroupName=name, Description=i.get("description") or "Managed by Pulumi",
            **({"VpcId": i["vpcId"]} if i.get("vpcId") else {}),
            TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(i)}])["GroupId"]
        ingress = [_permission(rule) for rule in i.get("ingress", [])]
        if ingress:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ingress)
        egress = [_permission(rule) for rule in i.get("egress", [])]
        # EC2 already allows all egress by default; adding it again is a duplicate.
        extra = [p for p in egress if not (p["IpProtocol"] == "-1" and p.get("IpRanges") == [{"CidrIp": "0.0.0.0/0"}])]
        if extra:
            ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=extra)
        return group_id, {**i, "name": name, "arn": f"arn:aws:ec2:{self.clients.region}:{self.account_id}:security-group/{group_id}"}

    def _key_pair(self, logical: str, i: dict) -> tuple[str, dict]:
        name = i.get("keyName") or _autoname(logical)
        pair = self.clients("ec2").import_key_pair(
            KeyName=name, PublicKeyMaterial=i["publicKey"].encode(),
            TagSpecifications=[{"ResourceType": "key-pair", "Tags": _tags(i)}])
        return name, {**i, "keyName": name, "keyPairId": pair.get("KeyPairId", ""), "fingerprint": pair["KeyFingerprint"]}

    def _private_key(self, logical: str, i: dict) -> tuple[str, dict]:
        """pulumi-tls makes the key inside the provider, touching no cloud: so does this (a real, random key)."""
        state = private_key_state(i)
        return state.pop("id"), state

    def _instance(self, logical: str, i: dict) -> tuple[str, dict]:
        meta = i.get("metadataOptions", {})
        root = i.get("rootBlockDevice", {})
        request: dict[str, Any] = {
            "ImageId": i["ami"], "InstanceType": i["instanceType"], "MinCount": 1, "MaxCount": 1,
            "MetadataOptions": {
                "HttpTokens": meta.get("httpTokens", "optional"),
                "HttpEndpoint": meta.get("httpEndpoint", "enabled"),
                "HttpPutResponseHopLimit": int(meta.get("httpPutResponseHopLimit", 1)),
            },
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {
                "Encrypted": bool(root.get("encrypted")), "VolumeType": root.get("volumeType", "gp3"),
                "VolumeSize": int(root.get("volumeSize") or 8)}}],  # AL2023's image default
            "TagSpecifications": [{"ResourceType": "instance", "Tags": _tags(i)}],
        }
        if i.get("associatePublicIpAddress") is not None:
            # as the provider does: the public address is asked for on the primary interface
            request["NetworkInterfaces"] = [{
                "DeviceIndex": 0, "AssociatePublicIpAddress": bool(i["associatePublicIpAddress"]),
                **({"SubnetId": i["subnetId"]} if i.get("subnetId") else {}),
                **({"Groups": i["vpcSecurityGroupIds"]} if i.get("vpcSecurityGroupIds") else {}),
            }]
        optional = {
            "KeyName": i.get("keyName"),
            "SecurityGroupIds": None if "NetworkInterfaces" in request else i.get("vpcSecurityGroupIds"),
            "SubnetId": None if "NetworkInterfaces" in request else i.get("subnetId"),
            "UserData": i.get("userData"),
            "InstanceInitiatedShutdownBehavior": i.get("instanceInitiatedShutdownBehavior"),
            "IamInstanceProfile": {"Name": i["iamInstanceProfile"]} if i.get("iamInstanceProfile") else None,
        }
        request.update({k: v for k, v in optional.items() if v})
        instance = self.clients("ec2").run_instances(**request)["Instances"][0]
        return instance["InstanceId"], {
            **i,
            "arn": f"arn:aws:ec2:{self.clients.region}:{self.account_id}:instance/{instance['InstanceId']}",
            "publicIp": instance.get("PublicIpAddress", ""),
            "privateIp": instance.get("PrivateIpAddress", ""),
            "instanceState": instance["State"]["Name"],
        }


def _filters(args: dict) -> list[dict]:
    return [{"Name": f["name"], "Values": list(f["values"])} for f in args.get("filters") or []]


def _permission(rule: dict) -> dict:
    permission: dict[str, Any] = {"IpProtocol": str(rule.get("protocol", "tcp"))}
    if permission["IpProtocol"] != "-1":
        permission.update(FromPort=int(rule.get("fromPort", 0)), ToPort=int(rule.get("toPort", 0)))
    if rule.get("cidrBlocks"):
        permission["IpRanges"] = [{"CidrIp": c, "Description": rule.get("description", "")} for c in rule["cidrBlocks"]]
        if permission["IpProtocol"] == "-1":
            permission["IpRanges"] = [{"CidrIp": c} for c in rule["cidrBlocks"]]
    if rule.get("ipv6CidrBlocks"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": c} for c in rule["ipv6CidrBlocks"]]
    return permission


def record_json(created: list[Created]) -> str:
    return json.dumps([asdict(c) for c in created], indent=2, default=str)


def read_record(text: str) -> list[Created]:
    return [Created(**entry) for entry in json.loads(text)]

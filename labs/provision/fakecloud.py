"""Deterministic Pulumi mocks: what `rolelab plan` and the unit tests 'create'.

Ids and addresses are predictable, and public addresses come from TEST-NET-3
(203.0.113.0/24), which is reserved for documentation and never routed.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from typing import Any

import pulumi

from labs.provision.hostkeys import PRIVATE_KEY, private_key_state

FAKE_ACCOUNT = "123456789012"
PLANNED_AMI = "ami-0resolvedatup000"


FAKE_VPC = "vpc-0fa4e000000000001"
FAKE_ZONES = ("us-east-1a", "us-east-1b")


class FakeCloud(pulumi.runtime.Mocks):
    """An account with a default VPC (unless told otherwise) and the roles in `roles` ({name: tags})."""

    def __init__(self, default_vpc: bool = True, roles: dict[str, dict[str, str]] | None = None) -> None:
        self._counters: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))
        self.default_vpc = default_vpc
        self.roles = roles or {}

    def _next(self, kind: str) -> int:
        return next(self._counters[kind])

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if not args.custom:
            return "", {}
        inputs = dict(args.inputs)
        kind = args.typ
        if kind == "aws:iam/role:Role":
            name = inputs.get("name") or f"{args.name}-{self._next('autoname'):07d}"
            return name, {**inputs, "name": name, "arn": f"arn:aws:iam::{FAKE_ACCOUNT}:role/{name}",
                          "uniqueId": f"AROAFAKE{self._next('role'):012d}"}
        if kind == "aws:iam/instanceProfile:InstanceProfile":
            name = inputs.get("name") or f"{args.name}-{self._next('autoname'):07d}"
            return name, {**inputs, "name": name, "arn": f"arn:aws:iam::{FAKE_ACCOUNT}:instance-profile/{name}"}
        if kind == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
            return f"{inputs.get('role')}-{self._next('attachment'):08d}", inputs
        if kind == "aws:ec2/securityGroup:SecurityGroup":
            return f"sg-0{hashlib.sha256(args.name.encode()).hexdigest()[:16]}", {**inputs, "name": inputs.get("name") or args.name}
        if kind == "aws:ec2/keyPair:KeyPair":
            return inputs["keyName"], {**inputs, "keyPairId": f"key-0fake{self._next('key'):08d}"}
        if kind == "aws:ec2/instance:Instance":
            # Derived from the logical name: registration order varies between runs.
            digest = hashlib.sha256(args.name.encode()).digest()
            return f"i-0{digest.hex()[:16]}", {**inputs, "publicIp": f"203.0.113.{digest[0] % 254 + 1}",
                                               "instanceState": "running"}
        if kind == PRIVATE_KEY:  # derived from the logical name, like the instance ids
            state = private_key_state(inputs, seed=args.name.encode())
            return state.pop("id"), state
        return f"{args.name}-id", inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:ssm/getParameter:getParameter":
            return {"name": args.args["name"], "value": PLANNED_AMI, "type": "String", "id": args.args["name"]}
        if args.token == "aws:ec2/getVpcs:getVpcs":
            return {"id": "us-east-1", "ids": [FAKE_VPC] if self.default_vpc else []}
        if args.token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            return {"id": "us-east-1", "locations": list(FAKE_ZONES), "locationTypes": ["availability-zone"] * 2}
        if args.token == "aws:ec2/getSubnets:getSubnets":
            zones = next((f["values"] for f in args.args.get("filters", []) if f["name"] == "availability-zone"), [])
            return {"id": "us-east-1", "ids": [f"subnet-0fa4e00000000000{FAKE_ZONES.index(z) + 1}"
                                               for z in zones if z in FAKE_ZONES]}
        if args.token == "aws:iam/getRoles:getRoles":
            pattern = re.compile(args.args.get("nameRegex") or ".*")
            names = sorted(n for n in self.roles if pattern.search(n))
            return {"id": FAKE_ACCOUNT, "names": names, "arns": [f"arn:aws:iam::{FAKE_ACCOUNT}:role/{n}" for n in names]}
        if args.token == "aws:iam/getRole:getRole":
            name = args.args["name"]
            return {"id": name, "name": name, "arn": f"arn:aws:iam::{FAKE_ACCOUNT}:role/{name}",
                    "tags": self.roles.get(name, {})}
        return {}

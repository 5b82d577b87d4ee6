"""`rolelab preflight --local`: the same read-only items against the lab cloud, as its operator.

A fresh lab cloud passes every item it can check; a missing default VPC, a role name someone made
by hand and a non-Nitro type are each a FAIL with its fix, exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

from labs.provision import local
from labs.provision.mockrun import PROJECT_DIR
from labs.provision.operator import operator_clients
from tests.offline.conftest import stack_up

STACK = "preflight"
# The stack's own role has another name, so that DemoRoleForEC2 is free until made by hand below.
OWN_ROLE = "PreflightOwnRole"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def preflight(*argv: str) -> tuple[int, dict[str, tuple[str, str]]]:
    """The real CLI; (exit code, {item: (state, rest of its line)})."""
    done = subprocess.run([sys.executable, "-m", "labs.cli", "preflight", "--local", "--stack", STACK, *argv],
                          capture_output=True, text=True, timeout=60, cwd=PROJECT_DIR)
    assert done.stderr == "" and done.stdout.startswith("preflight:\n"), done.stderr + done.stdout
    # one line per item, in columns: "  STATE(15) NAME(14) detail; fix"
    items = {line[18:32].strip(): (line[2:17].strip(), line[33:]) for line in done.stdout.splitlines()[1:]}
    return done.returncode, items


def delete_default_vpc(ec2) -> str:
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc)
    return vpc


def test_preflight_local_reports_every_item_and_each_problem_with_its_fix():
    with stack_up(STACK, {"roleName": OWN_ROLE}) as outputs:
        code, items = preflight()
        assert list(items) == ["credentials", "network", "names", "instance type", "permissions"]
        assert code == 0, items
        assert [items[n][0] for n in ("credentials", "network", "names", "instance type")] == ["ok"] * 4, items
        assert OWN_ROLE in items["names"][1] and "t3.micro is a Nitro type" in items["instance type"][1]
        # moto has no IAM policy simulator: said, and not a failure
        assert items["permissions"][0] in ("ok", "could not check"), items

        operator = operator_clients(outputs)
        vpc = delete_default_vpc(operator("ec2"))
        operator("iam").create_role(RoleName="DemoRoleForEC2", AssumeRolePolicyDocument=TRUST)
        code, items = preflight("--config", "roleName=DemoRoleForEC2", "--config", "instanceType=t2.micro")
        assert code == 1, items
        assert {n for n, (state, _) in items.items() if state == "FAIL"} == {"network", "names", "instance type"}
        assert items["network"][1] == (f"no default VPC in {outputs.region}; run `aws ec2 create-default-vpc`, or "
                                       "set rolelab:vpcId and rolelab:subnetId (a subnet with a route to an internet "
                                       "gateway)"), vpc
        assert items["names"][1].startswith(f"IAM role 'DemoRoleForEC2' already exists and was not made by stack "
                                            f"'{STACK}'") and "set rolelab:roleName to another name" in items["names"][1]
        assert items["instance type"][1] == ("t2.micro runs on xen, not Nitro: its console output (the host-key "
                                             "cross-check) is late and partial; set rolelab:instanceType to t3.micro")
    assert local.status(STACK)["state"] != "up"

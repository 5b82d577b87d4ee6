"""`rolelab preflight` on a moto account (in-process): every item reported, failures with their fix."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from labs.app import preflight
from labs.core.errors import ExitStatus, InfraError
from labs.program import config as lab_config
from labs.provision.plan import PLACEHOLDERS

REGION = "us-east-1"
ITEMS = ["credentials", "network", "names", "instance type", "permissions"]


def _simulate_denied(**_):
    """moto has no SimulatePrincipalPolicy: answer as an account that denies it would."""
    from botocore.awsrequest import AWSResponse

    error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: iam:SimulatePrincipalPolicy"},
             "ResponseMetadata": {"HTTPStatusCode": 403}}
    return AWSResponse("https://iam.amazonaws.com", 403, {}, None), error


class MotoClients:
    region = REGION

    def __call__(self, service: str):
        client = boto3.client(service, region_name=REGION)
        if service == "iam":
            client.meta.events.register("before-call.iam.SimulatePrincipalPolicy", _simulate_denied)
        return client


@pytest.fixture
def account(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield MotoClients()


def config(stack: str = "pre", **values: str) -> lab_config.LabConfig:
    return lab_config.parse({"sshCidr": "198.51.100.7/32", "sshPublicKey": PLACEHOLDERS["sshPublicKey"], **values},
                            region=REGION, stack=stack)


def states(report: preflight.PreflightReport) -> dict[str, str]:
    return {item.name: item.state for item in report.items}


def test_a_ready_account_passes_every_item_and_exits_0(account):
    report = preflight.run_preflight(account, config())
    assert list(states(report)) == ITEMS
    assert states(report)["permissions"] == preflight.UNCHECKED  # a denied simulate is not a failure
    assert {s for n, s in states(report).items() if n != "permissions"} == {preflight.OK}, report.render()
    assert report.exit_status is ExitStatus.OK
    assert "account 123456789012" in report.render()


def test_no_default_vpc_is_a_failure_with_the_fix(account):
    ec2 = account("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc)
    report = preflight.run_preflight(account, config())
    (item,) = [i for i in report.items if i.name == "network"]
    assert item.state == preflight.FAIL and "no default VPC in us-east-1" in item.line()
    assert "create-default-vpc" in item.line() and "rolelab:vpcId" in item.line()
    assert report.exit_status is ExitStatus.LAB_WRONG


def test_a_hand_made_role_of_the_same_name_is_a_failure(account):
    account("iam").create_role(RoleName="DemoRoleForEC2", AssumeRolePolicyDocument="{}")
    report = preflight.run_preflight(account, config())
    (item,) = [i for i in report.items if i.name == "names"]
    assert item.state == preflight.FAIL, report.render()
    assert "'DemoRoleForEC2' already exists and was not made by stack 'pre'" in item.line()
    assert "pulumi config set rolelab:roleName DemoRoleForEC2-pre" in item.line()
    assert report.exit_status is ExitStatus.LAB_WRONG


def test_this_stacks_own_role_is_not_a_clash(account):
    account("iam").create_role(RoleName="DemoRoleForEC2", AssumeRolePolicyDocument="{}",
                               Tags=[{"Key": "lab", "Value": "rolelab"}, {"Key": "stack", "Value": "pre"}])
    assert states(preflight.run_preflight(account, config()))["names"] == preflight.OK


def test_a_taken_key_pair_name_is_a_failure(account):
    account("ec2").create_key_pair(KeyName="rolelab-pre")
    (item,) = [i for i in preflight.run_preflight(account, config()).items if i.name == "names"]
    assert item.state == preflight.FAIL and "key pair 'rolelab-pre'" in item.line()


def test_a_xen_type_is_a_failure(account):
    report = preflight.run_preflight(account, config(instanceType="t2.micro"))
    (item,) = [i for i in report.items if i.name == "instance type"]
    assert item.state == preflight.FAIL and "t2.micro runs on xen, not Nitro" in item.line()
    assert "t3.micro" in item.fix


def test_configured_subnet_must_exist_and_belong_to_the_vpc(account):
    report = preflight.run_preflight(account, config(vpcId="vpc-0123456789abcdef0", subnetId="subnet-0123456789abcdef0"))
    (item,) = [i for i in report.items if i.name == "network"]
    assert item.state == preflight.FAIL and "subnet-0123456789abcdef0 does not exist" in item.line()


def test_no_credentials_is_one_failure_and_nothing_else_is_asked(monkeypatch):
    for name in [n for n in os.environ if n.startswith("AWS_") and n not in ("AWS_CONFIG_FILE",
                                                                            "AWS_SHARED_CREDENTIALS_FILE")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    report = preflight.run_preflight(MotoClients(), config())
    assert [(i.name, i.state) for i in report.items] == [("credentials", preflight.FAIL)]
    assert "aws login" in report.items[0].fix and report.exit_status is ExitStatus.LAB_WRONG


def test_a_denied_simulate_is_could_not_check_and_an_allowed_one_ok(account, monkeypatch):
    from botocore.stub import Stubber

    iam = boto3.client("iam", region_name=REGION)
    real = account.__class__.__call__
    monkeypatch.setattr(account.__class__, "__call__", lambda self, s: iam if s == "iam" else real(self, s))
    arn = "arn:aws:sts::123456789012:assumed-role/Admin/me"
    with Stubber(iam) as stub:
        stub.add_client_error("simulate_principal_policy", "AccessDenied", expected_params=None)
        assert preflight.check_permissions(account, arn).state == preflight.UNCHECKED
        stub.add_response("simulate_principal_policy", {"EvaluationResults": [
            {"EvalActionName": a, "EvalDecision": "allowed" if a != "iam:CreateRole" else "implicitDeny"}
            for a in preflight.ACTIONS]}, {"PolicySourceArn": "arn:aws:iam::123456789012:role/Admin",
                                           "ActionNames": list(preflight.ACTIONS)})
        item = preflight.check_permissions(account, arn)
    assert item.state == preflight.FAIL and "do not allow iam:CreateRole" in item.line()


def test_an_api_that_does_not_answer_is_exit_3():
    class Silent:
        region = REGION

        def __call__(self, service):
            class Client:
                def get_caller_identity(self):
                    raise EndpointConnectionError(endpoint_url="https://sts.amazonaws.com")
            return Client()

    with pytest.raises(InfraError) as caught:
        preflight.run_preflight(Silent(), config())
    assert caught.value.exit_status is ExitStatus.UNREACHABLE and "did not answer" in str(caught.value)


def test_program_config_reads_the_stacks_pulumi_config():
    parsed = preflight.program_config({"aws:region": "eu-west-1", "rolelab:roleName": "Lab2",
                                       "rolelab:sshCidr": "198.51.100.7/32",
                                       "rolelab:sshPublicKey": PLACEHOLDERS["sshPublicKey"]}, "b")
    assert parsed.region == "eu-west-1" and parsed.physical_names()["roles"] == ["Lab2"]
    assert parsed.physical_names()["key_pairs"] == ["rolelab-b"]

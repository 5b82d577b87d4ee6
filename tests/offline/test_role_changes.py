"""Changing the role of running hosts through the EC2 and IAM APIs, watched with the real aws CLI."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from labs.labcloud.procs import wait_for
from labs.program.policies import SUPPORTED
from labs.provision.operator import operator_clients
from tests.offline.conftest import host_status, ssh

READ_ONLY = SUPPORTED["IAMReadOnlyAccess"].arn


def until(predicate, timeout: float = 10.0) -> bool:
    return wait_for(predicate, timeout, interval=0.2)


def test_attaching_the_role_to_the_running_no_role_host_needs_no_restart(lab):
    no_role, with_role = lab.host("no-role"), lab.host("with-role")
    ec2 = operator_clients(lab)("ec2")
    before = host_status(lab, no_role)
    profile = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [with_role.instance_id]}])["IamInstanceProfileAssociations"][0]
    association = ec2.associate_iam_instance_profile(
        IamInstanceProfile={"Arn": profile["IamInstanceProfile"]["Arn"]}, InstanceId=no_role.instance_id)
    try:
        assert until(lambda: ssh(lab, no_role, "aws iam list-users").returncode == 0)
        after = host_status(lab, no_role)
        assert after["sshd_pid"] == before["sshd_pid"], "the host was restarted"
        assert after["instance_id"] == no_role.instance_id
        instance = ec2.describe_instances(InstanceIds=[no_role.instance_id])["Reservations"][0]["Instances"][0]
        assert instance["State"]["Name"] == "running"
        arn = ssh(lab, no_role, "aws sts get-caller-identity --query Arn --output text").stdout.strip()
        assert arn.endswith(f"assumed-role/DemoRoleForEC2/{no_role.instance_id}")
    finally:
        ec2.disassociate_iam_instance_profile(AssociationId=association["IamInstanceProfileAssociation"]["AssociationId"])
    assert until(lambda: "Unable to locate credentials" in ssh(lab, no_role, "aws iam list-users").stderr)


def test_a_second_association_is_refused_with_incorrect_state(lab):
    with_role = lab.host("with-role")
    ec2 = operator_clients(lab)("ec2")
    with pytest.raises(ClientError) as refused:
        ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "DemoRoleForEC2"}, InstanceId=with_role.instance_id)
    assert refused.value.response["Error"]["Code"] == "IncorrectState"


def test_detaching_the_policy_denies_and_reattaching_restores(lab):
    with_role = lab.host("with-role")
    iam = operator_clients(lab)("iam")
    iam.detach_role_policy(RoleName="DemoRoleForEC2", PolicyArn=READ_ONLY)
    try:
        assert until(lambda: "(AccessDenied)" in ssh(lab, with_role, "aws iam list-users").stderr)
    finally:
        iam.attach_role_policy(RoleName="DemoRoleForEC2", PolicyArn=READ_ONLY)
    assert until(lambda: ssh(lab, with_role, "aws iam list-users").returncode == 0)

"""The operator's read-only view of one student's part of the account (boto3 clients passed in).

Drills read it before they act, and hints read it after a failure: the lab is judged as
it is, never assumed to be as declared.
"""

from __future__ import annotations


def associations(ec2, instance_id: str) -> list[dict]:
    """The instance's live instance-profile associations (associating or associated)."""
    found = ec2.describe_iam_instance_profile_associations(Filters=[{"Name": "instance-id", "Values": [instance_id]}])
    return [a for a in found.get("IamInstanceProfileAssociations", [])
            if a.get("State") in ("associating", "associated")]


def profile_arn(ec2, instance_id: str) -> str | None:
    """The instance profile currently associated with an instance, if any."""
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}, {"Name": "state", "Values": ["associated"]}])
    listed = found.get("IamInstanceProfileAssociations", [])
    return listed[0]["IamInstanceProfile"]["Arn"] if listed else None


def instance_facts(ec2, instance_id: str) -> tuple[str, str, str]:
    """(instance id, state, launch time): what tells a replaced instance from the same one."""
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return instance["InstanceId"], instance["State"]["Name"], str(instance.get("LaunchTime", ""))


def attached_policies(iam, role: str) -> tuple[str, ...] | None:
    """The role's attached managed policy ARNs, or None when the role does not exist."""
    try:
        pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role)
        return tuple(p["PolicyArn"] for page in pages for p in page["AttachedPolicies"])
    except iam.exceptions.NoSuchEntityException:
        return None

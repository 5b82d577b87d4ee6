"""The AWS managed policies the lab supports, and what each one lets a host do.

One small table: verification derives every expected outcome from it, so a lab
configured with any of these policies verifies correctly with no code change.
"""

from __future__ import annotations

from dataclasses import dataclass

ARN_PREFIX = "arn:aws:iam::aws:policy/"


@dataclass(frozen=True)
class ManagedPolicy:
    name: str
    path: str  # AWS keeps some managed policies under a path (service-role/)
    grants: frozenset[str]  # probe ids this policy allows (see labs/verify/probes.py)
    summary: str

    @property
    def arn(self) -> str:
        return f"{ARN_PREFIX}{self.path}{self.name}"


SUPPORTED: dict[str, ManagedPolicy] = {
    p.name: p
    for p in (
        ManagedPolicy("IAMReadOnlyAccess", "", frozenset({"iam-list-users", "iam-list-roles"}),
                      "read IAM (list users and roles), change nothing"),
        ManagedPolicy("AmazonS3ReadOnlyAccess", "", frozenset({"s3-list-buckets"}),
                      "list and read S3, write nothing"),
        ManagedPolicy("AmazonS3FullAccess", "", frozenset({"s3-list-buckets", "s3-create-bucket"}),
                      "read and write S3"),
        ManagedPolicy("AmazonEC2ReadOnlyAccess", "", frozenset({"ec2-describe-instances"}),
                      "describe EC2, change nothing"),
        ManagedPolicy("CloudWatchAgentServerPolicy", "", frozenset({"logs-describe-log-groups"}),
                      "what the CloudWatch agent needs (logs, metrics)"),
        ManagedPolicy("AmazonSSMManagedInstanceCore", "", frozenset({"ssm-get-parameter"}),
                      "what Systems Manager needs to manage the instance"),
    )
}

DEFAULT_POLICY = "IAMReadOnlyAccess"


def policy_by_arn(arn: str) -> ManagedPolicy | None:
    return next((p for p in SUPPORTED.values() if p.arn == arn), None)

"""The aws CLI commands that exercise each supported policy, run on the hosts.

A probe is allowed on a host when one of the host's policies grants it (labs/policies.py);
otherwise it must be AccessDenied, and on a host without a role, NoCredentials.
"""

from __future__ import annotations

from dataclasses import dataclass

from labs.lesson.classify import Outcome
from labs.program.policies import SUPPORTED, policy_by_arn


@dataclass(frozen=True)
class Probe:
    id: str
    command: str  # run on the host; {suffix} is a per-host unique token, {location} region-dependent options
    why: str
    undo: str | None = None  # run on the host if the probe unexpectedly changed something

    def render(self, suffix: str, region: str) -> tuple[str, str | None]:
        """(command, undo) for one host in one region."""
        values = {"suffix": suffix, "location": bucket_location(region)}
        return self.command.format(**values), self.undo.format(**values) if self.undo else None


def bucket_location(region: str) -> str:
    """S3 refuses CreateBucket without a LocationConstraint outside us-east-1, and with one inside it."""
    return "" if region == "us-east-1" else f" --create-bucket-configuration LocationConstraint={region}"


PROBES: dict[str, Probe] = {p.id: p for p in (
    Probe("iam-list-users", "aws iam list-users --output json", "read IAM users"),
    Probe("iam-list-roles", "aws iam list-roles --max-items 20 --output json", "read IAM roles"),
    Probe("iam-create-user", "aws iam create-user --user-name rolelab-probe-{suffix} --output json",
          "write IAM (no lab policy allows it)"),
    Probe("s3-list-buckets", "aws s3api list-buckets --output json", "list S3 buckets"),
    Probe("s3-create-bucket", "aws s3api create-bucket --bucket rolelab-probe-{suffix}{location} --output json",
          "write S3", undo="aws s3api delete-bucket --bucket rolelab-probe-{suffix}"),
    Probe("ec2-describe-instances", "aws ec2 describe-instances --max-items 5 --output json", "read EC2"),
    Probe("logs-describe-log-groups", "aws logs describe-log-groups --limit 5 --output json", "read CloudWatch Logs"),
    Probe("ssm-get-parameter",
          "aws ssm get-parameter --name /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64 "
          "--output json", "read an SSM parameter"),
)}

# The lesson's own three commands run on every host; each policy adds its own probes and,
# where it is read-only, the write it must refuse.
LESSON_PROBES = ("iam-list-users", "iam-list-roles", "iam-create-user")
POLICY_PROBES = {
    "IAMReadOnlyAccess": ("iam-list-users", "iam-list-roles", "iam-create-user"),
    "AmazonS3ReadOnlyAccess": ("s3-list-buckets", "s3-create-bucket"),
    "AmazonS3FullAccess": ("s3-list-buckets", "s3-create-bucket"),
    "AmazonEC2ReadOnlyAccess": ("ec2-describe-instances",),
    "CloudWatchAgentServerPolicy": ("logs-describe-log-groups",),
    "AmazonSSMManagedInstanceCore": ("ssm-get-parameter",),
}
assert set(POLICY_PROBES) == set(SUPPORTED), "every supported policy needs probes"
assert all(g in PROBES for p in SUPPORTED.values() for g in p.grants), "grants must name probes"


def probes_for(policy_arns: tuple[str, ...]) -> list[Probe]:
    """The lesson's probes plus those of each policy named (ARNs), in a stable order."""
    wanted = list(LESSON_PROBES)
    for arn in policy_arns:
        policy = policy_by_arn(arn)
        for probe_id in POLICY_PROBES.get(policy.name, ()) if policy else ():
            if probe_id not in wanted:
                wanted.append(probe_id)
    return [PROBES[p] for p in wanted]


def expected(probe: Probe, role: str | None, policy_arns: tuple[str, ...]) -> Outcome:
    if not role:
        return Outcome.NO_CREDENTIALS
    granted = any(probe.id in p.grants for arn in policy_arns if (p := policy_by_arn(arn)))
    return Outcome.SUCCESS if granted else Outcome.ACCESS_DENIED

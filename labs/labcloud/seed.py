"""The account the lab cloud starts with: an operator (admin) identity and a little content.

The operator is made in-process through moto's IAM backend (IAM auth is enforced from
the first request, so nobody could make it over HTTP). The seed then goes through the
API like any client, so `list-users`, `s3 ls` and `logs` have something to show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

OPERATOR_USER = "rolelab-operator"
SEED_USERS = ("ana.silva", "ben.okafor", "chen.wei")
SEED_BUCKET = "rolelab-lesson-notes"
SEED_LOG_GROUP = "/rolelab/lesson"


@dataclass(frozen=True)
class OperatorCredentials:
    access_key_id: str
    secret_access_key: str

    def write(self, path: Path) -> None:
        """AWS shared-credentials format, mode 0600 from the first byte."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"[rolelab-operator]\naws_access_key_id = {self.access_key_id}\n"
                         f"aws_secret_access_key = {self.secret_access_key}\n")

    @classmethod
    def read(cls, path: Path) -> OperatorCredentials:
        values = {}
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
        return cls(values["aws_access_key_id"], values["aws_secret_access_key"])


def bootstrap_operator(account_id: str) -> OperatorCredentials:
    from moto.iam.models import iam_backends

    iam = iam_backends[account_id]["global"]
    iam.create_user(region_name="us-east-1", user_name=OPERATOR_USER, path="/", tags=None)
    iam.attach_user_policy("arn:aws:iam::aws:policy/AdministratorAccess", OPERATOR_USER)
    key = iam.create_access_key(OPERATOR_USER)
    return OperatorCredentials(key.access_key_id, key.secret_access_key)


def seed(clients) -> None:
    """A few users, a bucket with a note and a log group: what the lesson's commands list."""
    iam, s3, logs = clients("iam"), clients("s3"), clients("logs")
    for user in SEED_USERS:
        iam.create_user(UserName=user, Tags=[{"Key": "lab", "Value": "rolelab-seed"}])
    # S3 refuses a bucket without a LocationConstraint outside us-east-1 (and with one inside it).
    where = {} if clients.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": clients.region}}
    s3.create_bucket(Bucket=SEED_BUCKET, **where)
    s3.put_object(Bucket=SEED_BUCKET, Key="welcome.txt", Body=b"Roles, not keys.\n")
    logs.create_log_group(logGroupName=SEED_LOG_GROUP)

"""The operator: whoever runs the lab, acting on the account with boto3 (drills, confirmations, sweep).

Local mode: the lab cloud's bootstrapped admin, on the loopback endpoint only.
aws mode: the caller's own AWS credentials (boto3's default chain), in the stack's region.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from labs.errors import UsageError
from labs.outputs import LabOutputs


class Clients(Protocol):
    region: str

    def __call__(self, service: str): ...


class DefaultChainClients:
    """boto3's default credential chain, for aws mode (never used by tests)."""

    def __init__(self, region: str):
        import boto3

        self.region = region
        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()  # verify's check threads ask for clients; creating one is not thread-safe

    def __call__(self, service: str):
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(service)
            return self._clients[service]


def operator_clients(outputs: LabOutputs) -> Clients:
    if outputs.mode == "local":
        from labs.cloud.aws_clients import ClientFactory
        from labs.cloud.seed import OperatorCredentials

        if not outputs.operator_credentials or not outputs.endpoint:
            raise UsageError("local outputs lack the lab cloud endpoint or operator credentials; "
                             "re-create them with `rolelab local up`")
        try:
            creds = OperatorCredentials.read(Path(outputs.operator_credentials))
        except (OSError, KeyError):  # the stack was taken down, or the file is not ours
            raise UsageError(f"operator credentials {outputs.operator_credentials}: missing or unreadable; is the "
                             "stack still up? re-create the outputs with `rolelab local up`") from None
        return ClientFactory(outputs.endpoint, outputs.region, creds.access_key_id, creds.secret_access_key)
    return DefaultChainClients(outputs.region)


def profile_arn(ec2, instance_id: str) -> str | None:
    """The instance profile currently associated with an instance, if any."""
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}, {"Name": "state", "Values": ["associated"]}])
    associations = found.get("IamInstanceProfileAssociations", [])
    return associations[0]["IamInstanceProfile"]["Arn"] if associations else None

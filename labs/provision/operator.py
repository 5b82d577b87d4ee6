"""The operator: whoever runs the lab, acting on the account with boto3 (drills, confirmations, sweep).

Local mode: the lab cloud's bootstrapped admin, on the loopback endpoint only.
aws mode: the caller's own AWS credentials (boto3's default chain), in the stack's region.
"""

from __future__ import annotations

from pathlib import Path

from labs.core.clients import Clients, DefaultChainClients
from labs.core.errors import UsageError
from labs.core.outputs import LabOutputs


def operator_clients(outputs: LabOutputs) -> Clients:
    if outputs.mode == "local":
        from labs.labcloud.client import ClientFactory, OperatorCredentials

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

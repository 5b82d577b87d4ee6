"""Who acts on the account: a callable that hands out boto3 clients by service name.

The lesson's actions and the verifier's confirmations take any `Clients`; which
credentials and endpoint stand behind it is provisioning's business (labs.provision.operator).
"""

from __future__ import annotations

import threading
from typing import Protocol


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

"""boto3 clients for the lab cloud, refusing anything but a loopback endpoint."""

from __future__ import annotations

import ipaddress
import threading
from urllib.parse import urlparse

from labs.core.errors import UsageError


def require_loopback(url: str) -> str:
    """Safety rule: local mode talks only to 127.0.0.0/8 (or ::1)."""
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"refusing non-loopback endpoint {url!r} in local mode")
    return url


_warm_models = None  # set by warm_clients: a botocore data loader whose parsed models are kept


def _botocore_session():
    import botocore.session

    session = botocore.session.get_session()
    if _warm_models is not None:
        session.register_component("data_loader", _warm_models)
    return session


def keep_models() -> None:
    """From now on, every session of this process shares one data loader, so each model (and the 1.2 MB
    endpoints file) is parsed once, not once per session. Only a process that calls this keeps the
    models (~15 MB); the lab cloud, which makes its clients once, lets them go."""
    global _warm_models
    import botocore.loaders

    if _warm_models is None:
        _warm_models = botocore.loaders.create_loader()


def warm_clients(services: tuple[str, ...]) -> None:
    """Parse the services' models now, while something else is starting (no request is made)."""
    keep_models()
    factory = ClientFactory("http://127.0.0.1:9", "us-east-1", "warm", "warm")
    for service in services:
        factory(service)


class ClientFactory:
    """One boto3 session per lab cloud; clients cached (creation is not thread-safe, use is)."""

    def __init__(self, endpoint: str, region: str, access_key_id: str, secret_access_key: str):
        self.endpoint = require_loopback(endpoint)
        self.region = region
        self._credentials = (access_key_id, secret_access_key)
        self._session = None  # made on first use: a verify that passes never needs boto3
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str):
        with self._lock:
            if self._session is None:
                import boto3
                from botocore.config import Config

                self._session = boto3.session.Session(aws_access_key_id=self._credentials[0],
                                                      aws_secret_access_key=self._credentials[1],
                                                      region_name=self.region,
                                                      botocore_session=_botocore_session())
                self._config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5,
                                      read_timeout=30)
            if service not in self._clients:
                self._clients[service] = self._session.client(service, endpoint_url=self.endpoint, config=self._config)
            return self._clients[service]


def available_regions(service: str, partition: str) -> list[str]:
    """The partition's regions for a service, from the (shared, once kept) endpoints data."""
    return _botocore_session().get_available_regions(service, partition_name=partition)

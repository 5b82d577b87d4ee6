"""Offline tests run against a real lab cloud: moto over HTTP, real sshd, the real aws CLI."""

from __future__ import annotations

import subprocess
from typing import Iterator

import pytest

from labs.cloud import local
from labs.cloud.client import CloudClient
from labs.cloud.paths import StackPaths
from labs.outputs import HostRecord, LabOutputs
from labs.sshcmd import openssh_argv


@pytest.fixture(scope="session")
def lab() -> Iterator[LabOutputs]:
    """One student's lab, shared by tests that leave it as they found it."""
    local.down("offline")
    result = local.up({}, stack="offline")
    yield result.outputs
    local.down("offline")


def cloud(outputs: LabOutputs) -> CloudClient:
    return CloudClient(StackPaths.for_stack(outputs.stack))


def ssh(outputs: LabOutputs, host: HostRecord, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real OpenSSH client, with the outputs' pinned known_hosts (StrictHostKeyChecking=yes)."""
    return subprocess.run(openssh_argv(outputs, host, command=[command]), capture_output=True, text=True,
                          timeout=timeout)


def host_status(outputs: LabOutputs, host: HostRecord) -> dict:
    return next(h for h in cloud(outputs).status()["hosts"] if h["instance_id"] == host.instance_id)

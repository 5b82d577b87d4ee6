"""Offline tests run against a real lab cloud: moto over HTTP, real sshd, the real aws CLI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from labs.core.logs import rolelab_home
from labs.core.outputs import HostRecord, LabOutputs
from labs.labcloud.client import CloudClient
from labs.labcloud.paths import StackPaths
from labs.provision import local
from labs.remote.openssh import openssh_argv


@contextmanager
def stack_up(stack: str, values: dict[str, str] | None = None) -> Iterator[LabOutputs]:
    """A stack of its own for a test or module, taken down afterwards (and before: an interrupted run's)."""
    local.down(stack)
    try:
        yield local.up(values or {}, stack=stack).outputs
    finally:
        local.down(stack)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabOutputs]:
    """One student's lab, shared by tests that leave it as they found it."""
    with stack_up("offline") as outputs:
        yield outputs


def cloud(outputs: LabOutputs) -> CloudClient:
    return CloudClient(StackPaths.for_stack(outputs.stack))


def ssh(outputs: LabOutputs, host: HostRecord, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real OpenSSH client, with the outputs' pinned known_hosts (StrictHostKeyChecking=yes)."""
    return subprocess.run(openssh_argv(outputs, host, command=[command]), capture_output=True, text=True,
                          timeout=timeout)


def host_status(outputs: LabOutputs, host: HostRecord) -> dict:
    return next(h for h in cloud(outputs).status()["hosts"] if h["instance_id"] == host.instance_id)


def our_processes(home: Path | None = None) -> set[int]:
    """Live processes whose command line names `home` (default: the session's ROLELAB_HOME)."""
    marker = str(home or rolelab_home()).encode()
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker in handle.read() and int(pid) != os.getpid():
                    found.add(int(pid))
        except OSError:
            continue
    return found


def ours_listening(ports: set[int]) -> set[int]:
    """Those of `ports` still listening in a process of ours (other work on the machine may
    legitimately reuse a freed port number a moment later)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and port in ports:
                inodes[f"socket:[{fields[9]}]"] = port
    found = set()
    for pid in our_processes() | {os.getpid()}:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link in inodes:
                    found.add(inodes[link])
        except OSError:
            continue
    return found



"""A host's port taken between choosing it and sshd binding it (another lab, another program).

A real sshd against a real foreign listener that even answers with an SSH banner: the host
must not take that banner for its own sshd, must leave no process behind, and must move to
a new port unless clients already pin the old one.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs.core.errors import InfraError
from labs.labcloud.hosts import start_sshd
from labs.labcloud.procs import PidRecord, free_port, ssh_banner
from labs.labcloud.sshd import SshdHost

FOREIGN_BANNER = "SSH-2.0-SomebodyElse"


@pytest.fixture
def foreign_listener() -> Iterator[int]:
    """A loopback port held by a server that is not ours but greets like an sshd."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", free_port()))
    server.listen(8)
    closing = threading.Event()

    def greet() -> None:
        while not closing.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(f"{FOREIGN_BANNER}\r\n".encode())

    threading.Thread(target=greet, daemon=True).start()
    yield server.getsockname()[1]
    closing.set()
    server.close()


@pytest.fixture
def sshd_host(tmp_path: Path, foreign_listener: int) -> Iterator[SshdHost]:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    host = SshdHost("i-0portrace0000000", tmp_path / "host", foreign_listener, authorized_key="",
                    env={"PATH": os.environ["PATH"]}, pid_dir=pid_dir)
    host.prepare()
    yield host
    host.stop()


def test_a_taken_port_fails_fast_and_leaves_no_sshd(sshd_host, foreign_listener):
    with pytest.raises(InfraError, match="Address already in use"):
        sshd_host.start()
    assert sshd_host.process is None
    assert PidRecord.read_all(sshd_host.pid_dir) == [], "no PID record left for a process that is gone"
    assert FOREIGN_BANNER in (ssh_banner(foreign_listener) or ""), "the other program keeps its port"


def test_a_new_host_moves_to_a_free_port(sshd_host, foreign_listener):
    start_sshd(sshd_host, pinned=False)
    assert sshd_host.port != foreign_listener
    assert sshd_host.process is not None and sshd_host.process.poll() is None
    banner = ssh_banner(sshd_host.port) or ""
    assert banner.startswith("SSH-2.0-OpenSSH"), banner
    assert f"ListenAddress 127.0.0.1:{sshd_host.port}" in sshd_host.config_file.read_text()


def test_a_host_whose_port_is_pinned_does_not_move(sshd_host, foreign_listener):
    with pytest.raises(InfraError, match="Address already in use"):
        start_sshd(sshd_host, pinned=True)
    assert sshd_host.port == foreign_listener
    assert sshd_host.process is None

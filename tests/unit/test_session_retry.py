"""SSH connect retries only what a booting host does; a wrong key or user fails at once.

And local mode never connects anywhere but loopback. No sockets are opened here.
"""

from __future__ import annotations

import base64

import paramiko
import pytest

from labs.core.errors import UsageError
from labs.core.outputs import HostRecord
from labs.remote.session import HostSession, _retryable, require_loopback_host

PINNED = paramiko.PKey.from_type_string(
    "ssh-ed25519", base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAINv3RdMyzyZRvPrnGCu1IvU1ui88eXyhft6LJ6lghNaD"))
OFFERED = paramiko.PKey.from_type_string("ecdsa-sha2-nistp256", base64.b64decode(
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBI/A2NbL6xyTi9h9HmkSX1cekkGfPVKHEPBhNpWrPjhKwED93EbX3HxFSJESs7"
    "5KO46TMQpxXs+Ec1YUziB2KzU="))


def host(address: str) -> HostRecord:
    return HostRecord(student="student01", name="with-role", instance_id="i-0123456789abcdef0", address=address,
                      port=2222, user="root", role="DemoRoleForEC2", policies=(),
                      imds_endpoint="http://127.0.0.1:8111", http_tokens="required")


RETRIED = [
    ("sshd not listening yet", ConnectionRefusedError(111, "Connection refused")),
    ("connect timed out", TimeoutError("timed out")),
    ("TimeoutError", TimeoutError("timed out")),
    ("sshd restarting", ConnectionResetError(104, "Connection reset by peer")),
    ("closed mid-handshake", EOFError()),
    ("paramiko: no address answered", paramiko.ssh_exception.NoValidConnectionsError(
        {("127.0.0.1", 2222): ConnectionRefusedError(111, "Connection refused")})),
    ("banner not sent yet", paramiko.SSHException("Error reading SSH protocol banner")),
    ("banner timeout", paramiko.SSHException("Error reading SSH protocol banner[Errno 104] Connection reset by peer")),
]

NOT_RETRIED = [
    ("host key changed", paramiko.BadHostKeyException("203.0.113.5", OFFERED, PINNED)),
    ("wrong private key", paramiko.AuthenticationException("Authentication failed.")),
    ("no pinned key (RejectPolicy)", paramiko.SSHException("Server '[127.0.0.1]:2222' not found in known_hosts")),
    ("no pinned key, port 22", paramiko.SSHException("Server '203.0.113.5' not found in known_hosts")),
    ("no shared algorithm", paramiko.SSHException("Incompatible ssh peer (no acceptable host key)")),
    ("unreachable network", OSError(101, "Network is unreachable")),
    ("a bug of ours", ValueError("bad port")),
]


@pytest.mark.parametrize("error", [e for _, e in RETRIED], ids=[n for n, _ in RETRIED])
def test_booting_host_errors_are_retried(error):
    assert _retryable(error) is True


@pytest.mark.parametrize("error", [e for _, e in NOT_RETRIED], ids=[n for n, _ in NOT_RETRIED])
def test_wrong_key_or_user_fails_at_once(error):
    assert _retryable(error) is False


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1"])
def test_local_mode_accepts_loopback(address):
    require_loopback_host(host(address))  # does not raise


@pytest.mark.parametrize("address", ["203.0.113.5", "169.254.169.254", "10.0.0.12", "192.168.1.1", "0.0.0.0",
                                     "localhost", "ec2-203-0-113-5.compute-1.amazonaws.com", ""])
def test_local_mode_refuses_anything_else(address):
    with pytest.raises(UsageError) as raised:
        require_loopback_host(host(address))
    assert "student01/with-role" in str(raised.value) and repr(address) in str(raised.value)


def test_local_only_session_refuses_before_connecting():
    with pytest.raises(UsageError, match="203.0.113.5"):
        HostSession(host("203.0.113.5"), paramiko.HostKeys(), key_filename=None, local_only=True)
    session = HostSession(host("127.0.0.1"), paramiko.HostKeys(), key_filename=None, local_only=True)
    assert session.client is None  # constructing it opened nothing

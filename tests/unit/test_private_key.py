"""The private key: chmod advice only for the user's own key, never for a system file; an encrypted
key decrypted with ROLELAB_KEY_PASSPHRASE or left to ssh-agent; the agent kept with --identity."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest

from labs.core.errors import UsageError
from labs.remote import keys
from labs.remote.keys import PASSPHRASE_VAR, load_private_key
from labs.remote.session import HostSession, Unreachable
from labs.verify.runner import check_private_key


@pytest.fixture
def foreign_readable_file(tmp_path) -> Path:
    """A world-readable file that belongs to someone else (as root: a copy given to nobody)."""
    if os.geteuid() != 0:
        return Path("/etc/passwd")
    path = tmp_path / "shadow"
    shutil.copy("/etc/hostname", path)
    path.chmod(0o644)
    os.chown(path, 65534, 65534)
    return path


def test_an_own_key_readable_by_others_gets_chmod_advice(tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("key\n")
    key.chmod(0o644)
    with pytest.raises(UsageError, match=f"run: chmod 600 {key}$"):
        check_private_key(str(key))


def test_someone_elses_file_gets_no_chmod_advice(foreign_readable_file):
    with pytest.raises(UsageError) as caught:
        check_private_key(str(foreign_readable_file))
    assert "chmod" not in str(caught.value) and "a private key of your own" in str(caught.value)


def test_an_own_key_with_mode_600_passes(tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("key\n")
    key.chmod(0o600)
    check_private_key(str(key))


# -- encrypted keys: ROLELAB_KEY_PASSPHRASE, or ssh-agent -------------------------------------------

PASSPHRASE = "correct horse battery staple 7f3a"


def keygen(tmp_path: Path, name: str, passphrase: str, *options: str) -> Path:
    """A real key made by ssh-keygen (OpenSSH format unless -m PEM), mode 600, with its .pub."""
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", *options, "-N", passphrase, "-C", "", "-f", str(path)], check=True)
    return path


def public_blob(path: Path) -> bytes:
    return base64.b64decode(Path(f"{path}.pub").read_text().split()[1])


@pytest.fixture
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv(PASSPHRASE_VAR, raising=False)


@pytest.mark.parametrize("kind", [("-t", "ed25519"), ("-t", "rsa", "-b", "2048"), ("-t", "rsa", "-b", "2048", "-m", "PEM")],
                         ids=["ed25519", "rsa", "rsa-pem"])
def test_an_encrypted_key_is_decrypted_with_the_variable(tmp_path, monkeypatch, no_agent, kind):
    key = keygen(tmp_path, "id", PASSPHRASE, *kind)
    monkeypatch.setenv(PASSPHRASE_VAR, PASSPHRASE)
    loaded = load_private_key(str(key))
    assert loaded is not None and loaded.asbytes() == public_blob(key)


def test_an_encrypted_key_without_the_variable_says_how_in_one_line(tmp_path, no_agent):
    key = keygen(tmp_path, "id", PASSPHRASE, "-t", "ed25519")
    with pytest.raises(UsageError) as caught:
        load_private_key(str(key))
    message = str(caught.value)
    assert message == (f"private key {key} is encrypted; export ROLELAB_KEY_PASSPHRASE with its passphrase "
                       f"(or add it to ssh-agent: ssh-add {key})")
    assert caught.value.exit_status == 2


@pytest.mark.parametrize("kind", [("-t", "ed25519"), ("-t", "rsa", "-b", "2048", "-m", "PEM")], ids=["ed25519", "rsa-pem"])
def test_a_wrong_passphrase_is_a_usage_error_that_never_shows_it(tmp_path, monkeypatch, no_agent, kind):
    key = keygen(tmp_path, "id", PASSPHRASE, *kind)
    monkeypatch.setenv(PASSPHRASE_VAR, "wrong-passphrase-91c2")
    with pytest.raises(UsageError) as caught:
        load_private_key(str(key))
    message = str(caught.value)
    assert message.startswith(f"private key {key}: ROLELAB_KEY_PASSPHRASE is not its passphrase; export the right one")
    assert "wrong-passphrase-91c2" not in message and "\n" not in message


def test_an_unencrypted_key_ignores_the_variable(tmp_path, monkeypatch, no_agent):
    key = keygen(tmp_path, "id", "", "-t", "ed25519")
    monkeypatch.setenv(PASSPHRASE_VAR, PASSPHRASE)
    assert load_private_key(str(key)).asbytes() == public_blob(key)


def test_a_file_that_is_not_a_key_is_said_so(tmp_path, no_agent):
    key = tmp_path / "id"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(UsageError, match="not a private key rolelab can read"):
        load_private_key(str(key))


class FakeAgent:
    def __init__(self, blobs: list[bytes]):
        self.blobs = blobs

    def get_keys(self):
        return [type("AgentKey", (), {"asbytes": lambda self, b=b: b})() for b in self.blobs]

    def close(self):
        pass


def test_an_encrypted_key_held_by_ssh_agent_needs_no_passphrase(tmp_path, monkeypatch, no_agent):
    key = keygen(tmp_path, "id", PASSPHRASE, "-t", "ed25519")
    other = keygen(tmp_path, "other", "", "-t", "ed25519")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    monkeypatch.setattr(keys.paramiko, "Agent", lambda: FakeAgent([public_blob(other)]))
    with pytest.raises(UsageError, match="ROLELAB_KEY_PASSPHRASE"):
        load_private_key(str(key))  # the agent holds another key only
    monkeypatch.setattr(keys.paramiko, "Agent", lambda: FakeAgent([public_blob(other), public_blob(key)]))
    assert load_private_key(str(key)) is None  # the agent signs with it


def test_with_identity_the_session_offers_the_key_then_the_agent(tmp_path, monkeypatch, no_agent):
    """As ssh does: --identity's key first, then ssh-agent; a local stack's own key alone."""
    from labs.core.outputs import HostRecord, LabOutputs
    from labs.verify.runner import Verifier

    key = keygen(tmp_path, "id", PASSPHRASE, "-t", "ed25519")
    key.chmod(0o600)
    monkeypatch.setenv(PASSPHRASE_VAR, PASSPHRASE)
    host = HostRecord("student01", "with-role", "i-0123456789abcdef0", "127.0.0.1", 2222, "ec2-user",
                      "DemoRoleForEC2", (), "http://169.254.169.254", "required")
    aws = Verifier(LabOutputs("aws", "us-east-1", "dev", (host,)), identity=str(key))
    assert aws.allow_agent is True and aws.pkey.asbytes() == public_blob(key)
    captured = {}

    def connect(self, *args, **kwargs):
        captured.update(kwargs)
        raise paramiko.AuthenticationException("refused")

    monkeypatch.setattr(paramiko.SSHClient, "connect", connect)
    session = HostSession(host, paramiko.HostKeys(), None, budget=1.0, pkey=aws.pkey, allow_agent=aws.allow_agent)
    with pytest.raises(Unreachable):
        session.connect()
    assert captured["allow_agent"] is True and captured["pkey"] is aws.pkey and captured["look_for_keys"] is False
    assert HostSession(host, paramiko.HostKeys(), str(key)).allow_agent is False  # a key file alone, no agent
    assert HostSession(host, paramiko.HostKeys(), None).allow_agent is True  # no key at all: the agent


def test_no_key_and_no_agent_is_an_auth_problem_not_a_timeout(monkeypatch, no_agent):
    from labs.core.outputs import HostRecord

    host = HostRecord("student01", "with-role", "i-0123456789abcdef0", "127.0.0.1", 2222, "ec2-user",
                      "DemoRoleForEC2", (), "http://169.254.169.254", "required")

    def connect(self, *args, **kwargs):
        raise paramiko.SSHException("No authentication methods available")

    monkeypatch.setattr(paramiko.SSHClient, "connect", connect)
    with pytest.raises(Unreachable) as caught:
        HostSession(host, paramiko.HostKeys(), None, budget=1.0).connect()
    assert caught.value.cause == "auth" and "pass --identity" in str(caught.value)

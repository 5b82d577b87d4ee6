"""`--identity` with an encrypted key against the lab's real sshd: decrypted with ROLELAB_KEY_PASSPHRASE,
or signed by ssh-agent (which --identity keeps); without either, or with a wrong passphrase, one line
naming the variable, exit 2. The passphrase appears in no output and no log."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labs.core.logs import rolelab_home
from labs.provision.mockrun import PROJECT_DIR

PASSPHRASE = "lab-passphrase-5e1d9c"


@pytest.fixture
def encrypted_key(lab, tmp_path) -> Path:
    """The lab key pair's private key, re-encrypted as a student's would be (same public key)."""
    key = tmp_path / "id_lab"
    shutil.copy(lab.private_key_path, key)
    key.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", PASSPHRASE, "-f", str(key)], check=True,
                   capture_output=True)
    shutil.copy(f"{lab.private_key_path}.pub", f"{key}.pub")
    return key


def verify(lab, key: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("ROLELAB_KEY_PASSPHRASE", "SSH_AUTH_SOCK")}
    return subprocess.run([sys.executable, "-m", "labs.cli", "verify", "--local", "--stack", lab.stack, "-q",
                           "--identity", str(key)], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120, cwd=PROJECT_DIR)


def logs_text() -> str:
    return "".join(p.read_text(errors="replace") for p in (rolelab_home() / "logs").glob("*.log"))


def test_an_encrypted_identity_is_decrypted_with_the_variable_and_never_shown(lab, encrypted_key):
    done = verify(lab, encrypted_key, ROLELAB_KEY_PASSPHRASE=PASSPHRASE)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    missing = verify(lab, encrypted_key)
    assert (missing.returncode, missing.stdout) == (2, ""), missing.stderr
    assert missing.stderr.strip() == (f"rolelab: error: private key {encrypted_key} is encrypted; export "
                                      f"ROLELAB_KEY_PASSPHRASE with its passphrase (or add it to ssh-agent: "
                                      f"ssh-add {encrypted_key})")
    wrong = verify(lab, encrypted_key, ROLELAB_KEY_PASSPHRASE="not-it-77")
    assert (wrong.returncode, wrong.stdout) == (2, ""), wrong.stderr
    assert wrong.stderr.strip() == (f"rolelab: error: private key {encrypted_key}: ROLELAB_KEY_PASSPHRASE is not "
                                    f"its passphrase; export the right one (or add the key to ssh-agent: "
                                    f"ssh-add {encrypted_key})")
    for run in (done, missing, wrong):
        assert PASSPHRASE not in run.stdout + run.stderr and "not-it-77" not in run.stdout + run.stderr
    assert PASSPHRASE not in logs_text() and "not-it-77" not in logs_text()


def test_identity_keeps_ssh_agent(lab, encrypted_key, tmp_path):
    """The key is in the agent (as `ssh-add` leaves it), the file encrypted, no variable: the agent signs."""
    socket = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run(["ssh-add", "-q", lab.private_key_path], env={**os.environ, "SSH_AUTH_SOCK": str(socket)},
                       check=True, capture_output=True, timeout=10)
        done = verify(lab, encrypted_key, SSH_AUTH_SOCK=str(socket))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    finally:
        agent.terminate()  # by its PID: the agent this test started
        agent.wait(10)

"""A ROLELAB_HOME with a space and a '%', given relative: the lab comes up, and the real OpenSSH
client and `rolelab verify` reach its hosts (sshd_config and `ssh -o` quote the paths and
escape '%', which OpenSSH would otherwise expand as a token)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACK = "homes"


def rolelab(cwd: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, ROLELAB_HOME="lab home 100%", PYTHONPATH=str(PROJECT_DIR))
    return subprocess.run([sys.executable, "-m", "labs.cli", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def test_a_home_with_a_space_and_a_percent_given_relative_works_end_to_end(tmp_path):
    home = tmp_path / "lab home 100%"
    try:
        up = rolelab(tmp_path, "local", "up", "--stack", STACK)
        assert up.returncode == 0, up.stderr
        assert (home / "stacks" / STACK / "outputs.json").is_file(), "the state is not where ROLELAB_HOME says"
        assert not (PROJECT_DIR / "lab home 100%").exists(), "the lab cloud resolved the home elsewhere"

        ssh = rolelab(tmp_path, "ssh", "no-role", "--local", "--stack", STACK, "--", "echo", "on-the-host")
        assert (ssh.returncode, ssh.stdout.strip()) == (0, "on-the-host"), ssh.stderr

        verify = rolelab(tmp_path, "verify", "-q", "--local", "--stack", STACK, "--json")
        assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr
    finally:
        down = rolelab(tmp_path, "local", "down", "--stack", STACK)
        assert down.returncode == 0, down.stderr

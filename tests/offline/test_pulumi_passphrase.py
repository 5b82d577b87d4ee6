"""A passphrase-protected Pulumi backend without PULUMI_CONFIG_PASSPHRASE: every command that asks the
Pulumi CLI says so in one line with the fix, exit 2 (preflight: a FAIL item, exit 1), never a traceback
or 70. The stand-in `pulumi` prints the real CLI's error text (tests/offline/fake_pulumi)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labs.provision.pulumi_cli import PASSPHRASE_FIX

FAKE_DIR = Path(__file__).parent / "fake_pulumi"
GUARD_DIR = Path(__file__).parent / "guard"
STACK = "passphrase-dev"  # no local stack of this name: the commands ask the Pulumi CLI (aws mode)
PULUMI_ERROR = ("error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
                "PULUMI_CONFIG_PASSPHRASE_FILE environment variables")


def rolelab(tmp_path: Path, *argv: str, passphrase: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    env.update(PATH=f"{FAKE_DIR}:{os.environ['PATH']}", FAKE_PULUMI_PYTHON=sys.executable,
               FAKE_PULUMI_LOG=str(tmp_path / "pulumi.log"), FAKE_PULUMI_PASSPHRASE="required",
               ROLELAB_TEST_CONNECT_LOG=str(tmp_path / "connects.log"),
               PYTHONPATH=os.pathsep.join([str(GUARD_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]))
    if passphrase is not None:
        env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    return subprocess.run([sys.executable, "-m", "labs.cli", *argv], env=env, capture_output=True, text=True,
                          timeout=120)


def pulumi_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "pulumi.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("argv, verb", [
    (("verify", "--stack", STACK), "stack output --json"),
    (("drill", "detach-policy", "--stack", STACK), "stack output --json"),
    (("ssh", "no-role", "--stack", STACK, "--print"), "stack output --json"),
    (("outputs", "--stack", STACK, "--json"), "stack output --json"),
    (("e2e", "--stack", STACK), "config --json"),
], ids=["verify", "drill", "ssh", "outputs", "e2e"])
def test_a_missing_pulumi_passphrase_is_one_line_with_the_fix_exit_2(tmp_path, argv, verb):
    done = rolelab(tmp_path, *argv)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"rolelab: error: `pulumi {verb}`: {PASSPHRASE_FIX}", done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    if argv[0] == "e2e":  # stopped before anything existed: no up, so nothing to destroy
        assert [c[:2] for c in pulumi_calls(tmp_path)] == [["config", "--json"]]


def test_preflight_reports_the_missing_passphrase_as_a_failed_backend_item(tmp_path):
    done = rolelab(tmp_path, "preflight", "--stack", STACK)
    assert done.returncode == 1, done.stderr
    backend = [line for line in done.stdout.splitlines() if "backend" in line]
    assert len(backend) == 1 and backend[0].split()[0] == "FAIL", done.stdout
    assert PASSPHRASE_FIX in backend[0] and backend[0].endswith("then run preflight again")
    assert [c[0] for c in pulumi_calls(tmp_path)] == ["whoami"], "the stack was not opened without the passphrase"


def test_with_the_passphrase_the_fake_opens_the_stack(tmp_path):
    """The negative control: the same stand-in, given the passphrase, gets past the secrets manager."""
    done = rolelab(tmp_path, "outputs", "--stack", STACK, "--json", passphrase="correct horse")
    assert PASSPHRASE_FIX not in done.stderr
    assert [c[:3] for c in pulumi_calls(tmp_path)] == [["stack", "output", "--json"]]

"""`rolelab e2e` up to the Pulumi CLI boundary: a stand-in `pulumi` drives a local lab stack.

What is real: rolelab's process, its exit codes, its signal handling, and the whole
verify/drill run against the lab cloud. What is not: the Pulumi CLI (not installable here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from labs.labcloud.paths import StackPaths

FAKE_DIR = Path(__file__).parent / "fake_pulumi"


def e2e(tmp_path: Path, stack: str, fail: str = "", *, background: bool = False):
    env = dict(os.environ, PATH=f"{FAKE_DIR}:{os.environ['PATH']}", FAKE_PULUMI_PYTHON=sys.executable,
               FAKE_PULUMI_LOG=str(tmp_path / "pulumi.log"), FAKE_PULUMI_FAIL=fail, PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "labs.cli", "e2e", "--stack", stack, "--json"]
    if background:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "pulumi.log").read_text().splitlines()]


def verbs(tmp_path: Path) -> list[str]:
    return [" ".join(c[:2]) if c[0] == "stack" else c[0] for c in calls(tmp_path)]


def test_e2e_runs_up_verify_drills_destroy_and_exits_0(tmp_path):
    done = e2e(tmp_path, "e2e-ok")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    phases = {r["phase"] for r in report["results"]}
    assert {"verify", "attach-role", "detach-policy", "second-role"} <= phases
    assert verbs(tmp_path) == ["up", "stack output", "destroy"]
    for call in calls(tmp_path):
        assert "--non-interactive" in call and call[call.index("--stack") + 1] == "e2e-ok"
    assert calls(tmp_path)[0][:3] == ["up", "--yes", "--skip-preview"]
    assert not StackPaths.for_stack("e2e-ok").root.exists(), "destroy did not run"


def test_a_failed_up_still_destroys_and_exits_3(tmp_path):
    done = e2e(tmp_path, "e2e-upfail", fail="up")
    assert done.returncode == 3
    assert verbs(tmp_path) == ["up", "destroy"]
    assert "e2e: stopped: `pulumi up --yes --skip-preview` failed (exit 255)" in done.stderr
    assert "e2e: destroyed" in done.stderr


def test_a_failed_destroy_is_loud(tmp_path):
    done = e2e(tmp_path, "e2e-destroyfail", fail="destroy")
    assert done.returncode == 3
    assert "DESTROY FAILED" in done.stderr and "resources may remain" in done.stderr


def test_ctrl_c_during_verify_still_destroys(tmp_path):
    process = e2e(tmp_path, "e2e-interrupt", background=True)
    deadline = time.monotonic() + 60
    seen = ""
    while "== verify" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    assert "== verify" in seen, seen
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err[-2000:]
    assert "e2e: interrupted (Ctrl-C)" in err and "e2e: destroyed" in err
    assert verbs(tmp_path)[-1] == "destroy"
    assert not StackPaths.for_stack("e2e-interrupt").root.exists()


def test_without_the_pulumi_cli_e2e_says_what_to_install():
    env = dict(os.environ, PATH="/usr/bin:/bin")
    done = subprocess.run([sys.executable, "-m", "labs.cli", "e2e", "--stack", "x"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "the pulumi CLI is not on PATH; install the Pulumi CLI" in done.stderr

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

import boto3
import pytest
from moto.server import ThreadedMotoServer

from labs.labcloud.paths import StackPaths

FAKE_DIR = Path(__file__).parent / "fake_pulumi"
GUARD_DIR = Path(__file__).parent / "guard"


@pytest.fixture(scope="module")
def account(tmp_path_factory) -> dict[str, str]:
    """The "AWS account" preflight and the after-destroy sweep talk to: a moto server on loopback,
    reached through AWS_ENDPOINT_URL (boto3's own setting), with test credentials from a file."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    credentials = tmp_path_factory.mktemp("aws") / "credentials"
    credentials.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    yield {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
           "AWS_DEFAULT_REGION": "us-east-1"}
    server.stop()


def e2e(tmp_path: Path, stack: str, account: dict[str, str], fail: str = "", *, background: bool = False,
        slow_up: bool = False):
    env = dict(os.environ, PATH=f"{FAKE_DIR}:{os.environ['PATH']}", FAKE_PULUMI_PYTHON=sys.executable,
               FAKE_PULUMI_LOG=str(tmp_path / "pulumi.log"), FAKE_PULUMI_FAIL=fail, PYTHONUNBUFFERED="1",
               FAKE_PULUMI_SLOW_UP="1" if slow_up else "", **account,
               # every TCP connect of rolelab's process is audited: loopback only
               ROLELAB_TEST_CONNECT_LOG=str(tmp_path / "connects.log"),
               PYTHONPATH=os.pathsep.join([str(GUARD_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]))
    argv = [sys.executable, "-m", "labs.cli", "e2e", "--stack", stack, "--json"]
    if background:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)


def calls(tmp_path: Path) -> list[list[str]]:
    return [c for c in events(tmp_path) if not c[0].startswith("#")]


def events(tmp_path: Path) -> list[list]:
    return [json.loads(line) for line in (tmp_path / "pulumi.log").read_text().splitlines()]


def verbs(tmp_path: Path) -> list[str]:
    return [" ".join(c[:2]) if c[0] in ("stack", "config") else c[0] for c in calls(tmp_path)]


def test_e2e_runs_preflight_up_verify_drills_destroy_sweep_and_exits_0(tmp_path, account):
    done = e2e(tmp_path, "e2e-ok", account)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    phases = {r["phase"] for r in report["results"]}
    assert {"verify", "attach-role", "detach-policy", "second-role"} <= phases
    assert verbs(tmp_path) == ["config --json", "up", "stack output", "destroy"]
    assert "preflight:" in done.stderr and "instance type" in done.stderr
    assert "e2e: sweep: nothing tagged stack=e2e-ok is left in account 123456789012" in done.stderr
    for call in calls(tmp_path):
        assert "--non-interactive" in call and call[call.index("--stack") + 1] == "e2e-ok"
    assert calls(tmp_path)[1][:3] == ["up", "--yes", "--skip-preview"]
    assert not StackPaths.for_stack("e2e-ok").root.exists(), "destroy did not run"


def test_a_failed_up_still_destroys_and_exits_3(tmp_path, account):
    done = e2e(tmp_path, "e2e-upfail", account, fail="up")
    assert done.returncode == 3
    assert verbs(tmp_path) == ["config --json", "up", "destroy"]
    assert "e2e: stopped: `pulumi up --yes --skip-preview` failed (exit 255)" in done.stderr
    assert "e2e: destroyed" in done.stderr


def test_a_failed_destroy_clears_the_lock_retries_once_then_is_loud(tmp_path, account):
    done = e2e(tmp_path, "e2e-destroyfail", account, fail="destroy")
    assert done.returncode == 3
    assert verbs(tmp_path)[-3:] == ["destroy", "cancel", "destroy"]
    assert "DESTROY FAILED twice" in done.stderr and "resources may remain" in done.stderr


def test_what_destroy_left_behind_is_printed_resource_by_resource(tmp_path, account):
    ec2 = boto3.client("ec2", endpoint_url=account["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    tags = [{"Key": "lab", "Value": "rolelab"}, {"Key": "stack", "Value": "e2e-left"}, {"Key": "Name", "Value": "stray"}]
    group = ec2.create_security_group(GroupName="stray", Description="left behind",
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
    try:
        done = e2e(tmp_path, "e2e-left", account)
    finally:
        ec2.delete_security_group(GroupId=group)
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"e2e: LEFT BEHIND in the account (1): security-group {group}  (stray)" in done.stderr


def test_ctrl_c_during_up_cancels_pulumi_once_waits_then_destroys_shielded(tmp_path, account):
    process = e2e(tmp_path, "e2e-cancel", account, background=True, slow_up=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(e[0] == "#waiting" for e in _events_or_none(tmp_path)):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)  # Ctrl-C at the terminal reaches rolelab only
    seen = ""
    while "== pulumi destroy" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)  # a second Ctrl-C, during destroy
    try:
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    err = seen + err
    assert process.returncode == 130, err[-2000:]
    notes = [e for e in events(tmp_path) if e[0].startswith("#")]
    assert ["#waiting", "up", True] in notes, "pulumi must run in a session of its own"
    assert [e[:2] for e in notes].count(["#sigint", "up"]) == 1, notes  # exactly one SIGINT to up
    assert ["#cancelled", "up", True] in notes, "pulumi was not allowed to finish cancelling"
    assert ["#sigint", "destroy"] not in [e[:2] for e in notes], "the second Ctrl-C reached destroy"
    assert "Ctrl-C is ignored until then" in err and "e2e: destroyed" in err
    assert verbs(tmp_path)[-1] == "destroy"


def _events_or_none(tmp_path: Path) -> list[list]:
    return events(tmp_path) if (tmp_path / "pulumi.log").exists() else []


def test_ctrl_c_during_verify_still_destroys(tmp_path, account):
    process = e2e(tmp_path, "e2e-interrupt", account, background=True)
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

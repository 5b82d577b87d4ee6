"""The fault matrix: what goes wrong on the day of a class, each with its verdict and exit code."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs.cli.main import main
from labs.core.outputs import LabOutputs
from labs.labcloud.paths import StackPaths
from labs.labcloud.procs import PidRecord, cmdline, descendants, is_ours, wait_for
from labs.provision import local
from labs.remote.openssh import openssh_argv
from labs.verify.runner import CONNECT_BUDGET, SETTLE
from tests.offline.conftest import cloud, host_status, our_processes, ours_listening, stack_up

STACK = "faults"
PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab() -> Iterator[LabOutputs]:
    with stack_up(STACK, {"students": "2"}) as outputs:
        yield outputs


def verify(capsys, *extra: str) -> tuple[int, dict]:
    code = main(["verify", "--local", "--stack", STACK, "--json", "--quiet", *extra])
    return code, json.loads(capsys.readouterr().out)


def ready(lab: LabOutputs, host) -> bool:
    return wait_for(lambda: host_status(lab, host)["state"] == "ready", 15)


def test_a_late_sshd_is_waited_for_within_budget_and_the_wait_is_reported(lab, capsys):
    host = lab.host("no-role", "student02")
    cloud(lab).request("POST", "/faults/sshd", {"action": "restart", "instance_id": host.instance_id, "delay": 3})
    started = time.monotonic()
    code, report = verify(capsys)
    assert code == 0, [r for r in report["results"] if r["status"] != "pass"]
    assert time.monotonic() - started >= 2.5
    waits = [e for e in report["events"] if e.startswith("student02/no-role: SSH answered after")]
    assert waits, report["events"]
    seconds = float(waits[0].split("after ")[1].split(" s")[0])
    assert 2.0 <= seconds < CONNECT_BUDGET["local"], waits  # the delay, measured; a loaded machine adds to it


def test_an_sshd_crash_mid_verify_is_unreachable_exit_3_and_the_rest_is_verified(lab):
    victim = lab.host("with-role", "student01")
    process = subprocess.Popen([sys.executable, "-m", "labs.cli", "verify", "--local", "--stack", STACK, "--json",
                                "--connect-budget", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        line = ""
        while "student01/with-role" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
        cloud(lab).request("POST", "/faults/sshd", {"action": "crash", "instance_id": victim.instance_id})
        out, _ = process.communicate(timeout=120)
    finally:
        process.kill()
        cloud(lab).request("POST", "/faults/sshd", {"action": "restart", "instance_id": victim.instance_id})
        assert ready(lab, victim)
    assert process.returncode == 3, out[-1500:]
    report = json.loads(out)
    unreachable = [r for r in report["results"] if r["status"] == "unreachable"]
    assert unreachable and {(r["student"], r["host"]) for r in unreachable} == {("student01", "with-role")}
    assert all("student01/with-role" in r["note"] for r in unreachable)
    others = [r for r in report["results"] if (r["student"], r["host"]) != ("student01", "with-role")]
    assert len(others) == 19 and all(r["status"] == "pass" for r in others)


@pytest.mark.parametrize("mode", ["down", "slow"])
def test_imds_down_or_slow_points_at_imds_not_iam(lab, capsys, mode):
    host = lab.host("with-role", "student02")
    cloud(lab).request("POST", "/faults/imds", {"instance_id": host.instance_id, "mode": mode, "delay": 4})
    try:
        code, report = verify(capsys, "--settle", "0")
    finally:
        cloud(lab).request("POST", "/faults/imds", {"instance_id": host.instance_id, "mode": "up"})
    assert code == 3, "IMDS not answering is infrastructure, as a silent sshd is"
    failed = [r for r in report["results"] if r["status"] != "pass"]
    assert {(r["student"], r["host"]) for r in failed} == {("student02", "with-role")}
    assert {r["status"] for r in failed} == {"unreachable"}
    credentials = next(r for r in failed if r["check"] == "imds-credentials")
    assert credentials["observed"].startswith("IMDS unreachable")
    listing = next(r for r in failed if r["check"] == "iam-list-users")
    assert listing["observed"] == "NoCredentials"
    for result in failed:
        assert "IMDS" in result["hint"] and "not at IAM" in result["hint"], result


def test_iam_propagation_delay_is_waited_out_and_measured(lab, capsys):
    delay = 3.0
    cloud(lab).request("POST", "/faults/iam-delay", {"seconds": delay})
    try:
        code = main(["drill", "detach-policy", "--local", "--stack", STACK, "--student", "student01", "--json", "--quiet"])
        report = json.loads(capsys.readouterr().out)
        assert code == 0, [r for r in report["results"] if r["status"] != "pass"]
        denied = next(r for r in report["results"] if r["phase"] == "detach-policy" and r["check"] == "iam-list-users")
        # the delay, measured (a loaded machine adds its slower aws CLI runs, within the settle budget)
        assert delay - 0.5 <= denied["seconds"] < SETTLE["local"], denied
        assert denied["attempts"] > 1
        restored = next(r for r in report["results"] if r["phase"] == "detach-policy/re-attached")
        assert delay - 0.5 <= restored["seconds"] < SETTLE["local"], restored
        # the people's line says the same wait (to its one decimal; the JSON keeps two, so allow the rounding)
        said = [float(m) for e in report["events"] if e.startswith("student01/with-role: iam-list-users is ")
                for m in re.findall(r"after ([0-9.]+) s", e)]
        assert said and abs(said[0] - denied["seconds"]) <= 0.051, (said, denied["seconds"], report["events"])
        # the other student was never touched
        code, report = verify(capsys, "--settle", "0")
        assert code == 0
    finally:
        cloud(lab).request("POST", "/faults/iam-delay", {"seconds": 0})


def test_a_changed_host_key_is_a_hard_failure_and_nothing_is_sent(lab, capsys):
    host = lab.host("no-role", "student01")
    log = StackPaths.for_stack(STACK).host_dir(host.instance_id) / "sshd.log"
    cloud(lab).request("POST", "/faults/sshd", {"action": "restart", "instance_id": host.instance_id, "host_key": "new"})
    assert ready(lab, host)
    accepted = log.read_text().count("Accepted publickey")
    try:
        code, report = verify(capsys, "--settle", "0")
        assert log.read_text().count("Accepted publickey") == accepted, "a session was opened on a host with a new key"
    finally:
        cloud(lab).request("POST", "/faults/sshd", {"action": "restart", "instance_id": host.instance_id,
                                                    "host_key": "restore"})
        assert ready(lab, host)
    assert code == 1
    refused = [r for r in report["results"] if (r["student"], r["host"]) == ("student01", "no-role")]
    assert all(r["observed"] == "host key mismatch" for r in refused)
    assert "host key mismatch" in refused[0]["note"] and "student01/no-role" in refused[0]["note"]


def test_a_killed_lab_cloud_is_cleaned_up_by_recorded_pid():
    outputs = local.up({}, stack="sigkill").outputs
    paths = StackPaths.for_stack("sigkill")
    records = [r for _, r in PidRecord.read_all(paths.pids)]
    cloud_pid = next(r.pid for r in records if r.role == "cloud")
    session = subprocess.Popen(openssh_argv(outputs, outputs.host("no-role"), command=["sleep 60"]))
    try:
        assert wait_for(lambda: any("sleep 60" in cmdline(p) for r in records if r.role == "sshd"
                                    for p in descendants(r.pid)), 10)
        os.kill(cloud_pid, signal.SIGKILL)
        assert wait_for(lambda: local.status("sigkill")["state"] == "crashed", 10)
        orphans = [r.pid for r in records if r.role == "sshd"]
        assert all(os.path.exists(f"/proc/{pid}") for pid in orphans), "sshds should outlive a SIGKILLed cloud"
        summary = local.down("sigkill")
        assert {r.role for r in summary.killed} == {"sshd"}
    finally:
        session.kill()
        session.wait(timeout=10)  # a killed client is gone only once reaped (its cmdline may linger till then)
        local.down("sigkill")
    ports = [h.port for h in outputs.hosts] + [int(outputs.endpoint.rsplit(":", 1)[1])]
    assert not ours_listening(set(ports)), "a port of the killed stack is still listening"
    assert not any(os.path.exists(f"/proc/{r.pid}") and cmdline(r.pid) and r.marker in cmdline(r.pid) for r in records)
    assert not any("sleep 60" in cmdline(int(p)) for p in os.listdir("/proc") if p.isdigit())
    assert not paths.root.exists()



# -- signals: SIGTERM, SIGHUP and a second Ctrl-C clean up as the first Ctrl-C does ---------------------


def start_cli(home, *argv: str) -> tuple[subprocess.Popen, object]:
    """The real CLI in a ROLELAB_HOME of its own (so every process it starts is attributable); stderr to a file."""
    stderr = home / "stderr.txt"
    env = dict(os.environ, ROLELAB_HOME=str(home / "rolelab"))
    process = subprocess.Popen([sys.executable, "-m", "labs.cli", *argv], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=stderr.open("w"), cwd=PROJECT_DIR)
    return process, stderr


def stack_dir(home, stack: str):
    return home / "rolelab" / "stacks" / stack


def program_running(home, stack: str) -> bool:
    """The CLI logs this just before it runs the Pulumi program (whose runtime swallows an interrupt)."""
    log = home / "rolelab" / "logs" / "rolelab.log"
    return log.exists() and f"lab cloud {stack} up: pid" in log.read_text()


@pytest.mark.parametrize(("argv", "ready", "sig", "code"), [
    (("demo", "-q", "--stack", "sigdemo"), lambda home, s: (stack_dir(home, s) / "outputs.json").exists(),
     signal.SIGTERM, 143),  # mid-verify
    (("local", "up", "--stack", "sigup"), program_running, signal.SIGTERM, 143),  # mid-program
    (("local", "up", "--stack", "sighup"), lambda home, s: (stack_dir(home, s) / "cloud.json").exists(),
     signal.SIGHUP, 129),  # the lab cloud starting
], ids=["demo-sigterm", "local-up-sigterm", "local-up-sighup"])
def test_sigterm_and_sighup_stop_the_whole_stack_like_ctrl_c(tmp_path, argv, ready, sig, code):
    process, stderr = start_cli(tmp_path, *argv)
    stack = argv[argv.index("--stack") + 1]
    try:
        assert wait_for(lambda: ready(tmp_path, stack) or process.poll() is not None, 60)
        assert process.poll() is None, stderr.read_text()
        process.send_signal(sig)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert process.returncode == code, stderr.read_text()
    assert not our_processes(tmp_path / "rolelab"), "a process of the stack is still running"
    assert not stack_dir(tmp_path, stack).exists(), "the stack's state was left: a rerun would say it exists"


def test_a_second_ctrl_c_during_the_cleanup_of_local_up_is_ignored_and_nothing_is_left(tmp_path):
    process, stderr = start_cli(tmp_path, "local", "up", "--stack", "twice")
    try:
        assert wait_for(lambda: (stack_dir(tmp_path, "twice") / "cloud.json").exists(), 60), stderr.read_text()
        process.send_signal(signal.SIGINT)
        assert wait_for(lambda: "second Ctrl-C is ignored" in stderr.read_text(), 10), stderr.read_text()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr.read_text()
    assert "SIGINT ignored" in stderr.read_text()
    assert not our_processes(tmp_path / "rolelab"), "a process of the stack is still running"
    assert not stack_dir(tmp_path, "twice").exists(), "a half stack directory was left"


# -- the lab cloud itself down or frozen: exit 3 before anything is judged -----------------------------


@pytest.fixture(scope="module")
def deadcloud() -> Iterator[str]:
    """One stack for both cases: the frozen cloud is thawed after its case; a killed one is brought up again."""
    stack = "deadcloud"
    with stack_up(stack):
        yield stack


def cloud_pid_of_a_running_stack(stack: str) -> int:
    if local.status(stack)["state"] != "up":  # the cloud was killed by the case before
        local.down(stack)
        local.up({}, stack=stack)
    return next(r.pid for _, r in PidRecord.read_all(StackPaths.for_stack(stack).pids) if r.role == "cloud")


# stopped first: it leaves the cloud running again, for the killed case to kill
@pytest.mark.parametrize("how", [signal.SIGSTOP, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_dead_or_frozen_lab_cloud_is_exit_3_in_one_line_for_verify_drills_and_sweep(capsys, how, deadcloud):
    stack = deadcloud
    pid = cloud_pid_of_a_running_stack(stack)
    os.kill(pid, how)
    try:
        for argv in (["verify", "--quiet"], ["drill", "detach-policy", "--quiet"], ["sweep"]):
            started = time.monotonic()
            code = main([*argv, "--local", "--stack", stack])
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 3, (argv, err)
            assert len(err) == 1 and "lab cloud" in err[0] and "local down" in err[0], (argv, err)
            assert time.monotonic() - started < 10, f"{argv} took {time.monotonic() - started:.0f} s"
    finally:
        os.kill(pid, signal.SIGCONT)


# -- a stack whose state is gone or torn: its processes are found by their command lines ----------------


def test_a_deleted_state_directory_is_found_listed_and_stopped_by_pid(capsys):
    stack = "rmstate"
    outputs = local.up({}, stack=stack).outputs
    paths = StackPaths.for_stack(stack)
    records = [r for _, r in PidRecord.read_all(paths.pids)]
    try:
        shutil.rmtree(paths.root)  # rm -rf $ROLELAB_HOME/stacks/S under a running stack
        assert local.status(stack)["state"] == "orphaned"
        assert main(["local", "list"]) == 0
        listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith(stack)]
        assert listed and "orphaned" in listed[0] and f"local down --stack {stack}" in listed[0], listed
        assert main(["local", "down", "--stack", stack]) == 0
        said = capsys.readouterr().out
        assert "nothing to do" not in said and "3 found by command line" in said, said
    finally:
        local.down(stack)
    assert not any(is_ours(r) for r in records), "a process of the stack is still running"
    ports = [h.port for h in outputs.hosts] + [int(outputs.endpoint.rsplit(":", 1)[1])]
    assert not ours_listening(set(ports))


def test_a_torn_cloud_pid_record_does_not_let_down_leave_the_cloud_running():
    stack = "tornpid"
    local.up({}, stack=stack)
    paths = StackPaths.for_stack(stack)
    cloud_record = next(r for _, r in PidRecord.read_all(paths.pids) if r.role == "cloud")
    try:
        (paths.pids / "cloud.json").write_text('{"pid": ')
        summary = local.down(stack)
        assert [r.pid for r in summary.found] == [cloud_record.pid], summary.describe()
    finally:
        local.down(stack)
    assert not is_ours(cloud_record), "down reported the stack stopped while its lab cloud runs"

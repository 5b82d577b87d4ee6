"""local up / down: readiness, idempotence, two stacks side by side, and nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labs.core.errors import UsageError
from labs.labcloud.paths import StackPaths
from labs.labcloud.procs import PidRecord, is_ours, port_open, wait_for
from labs.provision import local
from tests.offline.conftest import cloud, ours_listening, ssh, stack_up

PROJECT_DIR = Path(__file__).resolve().parents[2]


def our_processes(stack: str) -> list[int]:
    """Every live process whose command line mentions the stack's state directory."""
    marker = str(StackPaths.for_stack(stack).root)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_two_stacks_side_by_side_then_down_leaves_nothing():
    first = local.up({}, stack="side-a").outputs
    second = local.up({"students": "2"}, stack="side-b").outputs
    try:
        assert first.endpoint != second.endpoint
        assert {h.port for h in first.hosts}.isdisjoint({h.port for h in second.hosts})
        assert ssh(second, second.host("with-role", "student02"), "aws iam list-users").returncode == 0
        records = [r for _, r in PidRecord.read_all(StackPaths.for_stack("side-a").pids)]
        ports = [h.port for h in first.hosts] + [int(first.endpoint.rsplit(":", 1)[1])]
        assert sorted(r.role for r in records) == ["cloud", "sshd", "sshd"]
        assert our_processes("side-a")
        listed = {info["stack"]: info for info in local.running_stacks()}
        assert listed["side-a"]["state"] == "up" and listed["side-a"]["health"] == "ok"
        assert [h["state"] for h in listed["side-b"]["hosts"]] == ["ready"] * 4
    finally:
        local.down("side-a")
    assert our_processes("side-a") == [], "processes left running after down"
    assert not any(is_ours(r) for r in records)
    assert not ours_listening(set(ports)), "a port is still listening"
    assert not StackPaths.for_stack("side-a").root.exists()
    assert ssh(second, second.host("no-role", "student01"), "true").returncode == 0, "down took the other stack"
    local.down("side-b")
    assert our_processes("side-b") == []


def test_down_is_idempotent_and_up_twice_is_a_no_op():
    assert local.down("never-up").describe() == "nothing was running"
    first = local.up({}, stack="twice")
    try:
        again = local.up({}, stack="twice")
        assert again.already_up and again.outputs == first.outputs
        with pytest.raises(UsageError, match="is already up in us-east-1"):
            local.up({}, stack="twice", region="eu-west-1")  # another region is another lab cloud
    finally:
        local.down("twice")
    assert local.down("twice").describe() == "nothing was running"


def test_hosts_follow_ec2_state_stop_and_start(lab_for_state):
    outputs = lab_for_state
    host = outputs.host("no-role")
    from labs.provision.operator import operator_clients

    ec2 = operator_clients(outputs)("ec2")
    control = cloud(outputs)
    ec2.stop_instances(InstanceIds=[host.instance_id])
    assert local.wait_for(lambda: host.instance_id not in {h["instance_id"] for h in control.status()["hosts"]}, 10)
    assert not port_open(host.port)
    ec2.start_instances(InstanceIds=[host.instance_id])
    assert local.wait_for(lambda: any(h["instance_id"] == host.instance_id and h["state"] == "ready"
                                      for h in control.status()["hosts"]), 10)
    assert ssh(outputs, host, "true").returncode == 0  # same host key and port after a restart


@pytest.fixture(scope="module")
def lab_for_state():
    """Shared by the two tests that use it: each leaves it up with every host ready, as it found it."""
    with stack_up("state") as outputs:
        yield outputs


def test_a_commercial_region_other_than_us_east_1_works_offline(capsys):
    """The config accepts other partitions too; those are refused in one line (tests/offline/test_bad_input.py)."""
    from labs.cli.main import main

    local.down("euwest")
    try:
        assert main(["local", "up", "--stack", "euwest", "--region", "eu-west-1"]) == 0
        assert local.read_outputs("euwest").region == "eu-west-1"
        assert main(["verify", "--local", "--stack", "euwest", "--quiet"]) == 0, capsys.readouterr().out
    finally:
        local.down("euwest")


def _cli(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labs.cli", *argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_DIR)


def test_two_local_ups_on_one_stack_at_once_the_second_is_refused_naming_the_first():
    local.down("racing")
    first = _cli("local", "up", "--stack", "racing")
    try:
        lock = StackPaths.for_stack("racing").lock_file
        assert wait_for(lambda: lock.exists() and "being brought up" in lock.read_text(), 30)
        second = _cli("local", "up", "--stack", "racing")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2, err
        assert err.strip() == (f"rolelab: error: stack 'racing' is being brought up by PID {first.pid}; "
                               "wait for it to finish (or add --wait), or use another --stack")
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert local.status("racing")["state"] == "up", "the first up's cloud was torn down by the second"
    finally:
        first.kill()
        local.down("racing")


def test_a_drill_or_down_on_a_stack_held_by_another_command_is_refused_and_up_wait_waits(lab_for_state):
    outputs = lab_for_state
    with local.lock(outputs.stack, "running drill detach-policy"):
        for argv in (["drill", "attach-role", "-q", "--local"], ["local", "down"], ["local", "up"]):
            process = _cli(*argv, "--stack", outputs.stack)
            _, err = process.communicate(timeout=60)
            assert process.returncode == 2, (argv, err)
            assert f"is running drill detach-policy by PID {os.getpid()}" in err, (argv, err)
        waiting = _cli("local", "up", "--wait", "--stack", outputs.stack)
        time.sleep(1.0)  # it must still be waiting for the lock we hold
        assert waiting.poll() is None
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and "already up" in out, err
    assert local.status(outputs.stack)["state"] == "up"

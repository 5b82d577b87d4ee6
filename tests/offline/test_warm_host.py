"""A running stack's warm host (labs.cli.warm), through the real console entry and its socket: it runs
`local up` and `local preview` for the caller exactly as the caller would, and only saves time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs.cli import warm
from labs.core.logs import log_file
from labs.labcloud.locks import stack_lock
from labs.labcloud.paths import StackPaths
from labs.labcloud.procs import PidRecord, cmdline, is_ours, stack_processes, wait_for

STACK = "warm"


def rolelab(*argv: str, cold: bool = False, **popen) -> subprocess.Popen:
    env = {**os.environ, **({"ROLELAB_WARM": "0"} if cold else {})}
    return subprocess.Popen([sys.executable, "-m", "labs.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **popen)


def finished(*argv: str, cold: bool = False, cwd: Path | None = None) -> tuple[int, str, str, int]:
    process = rolelab(*argv, cold=cold, cwd=cwd)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err, process.pid


def served_for(caller: int) -> list[int]:
    """The PIDs that ran a command for `caller`, from the log's warm host lines."""
    text = log_file().read_text() if log_file().exists() else ""
    return [int(line.split("warm host: PID ")[1].split()[0]) for line in text.splitlines()
            if "warm host: PID " in line and line.endswith(f"for PID {caller}")]


def comparable(out: str) -> object:
    """A preview's JSON with its steps in one order (the program registers resources from several threads)."""
    if not out.startswith("{"):
        return out
    data = json.loads(out)
    data["steps"] = sorted(data["steps"], key=json.dumps)
    return data


def host_record(paths: StackPaths) -> PidRecord:
    return dict((p.stem, r) for p, r in PidRecord.read_all(paths.pids))["warm"]


@pytest.fixture(scope="module")
def paths() -> Iterator[StackPaths]:
    finished("local", "down", "--stack", STACK)
    code, _, err, _ = finished("local", "up", "--stack", STACK, "--config", "students=1")
    assert code == 0, err
    try:
        yield StackPaths.for_stack(STACK)
    finally:
        finished("local", "down", "--stack", STACK)


def test_a_new_stack_leaves_a_warm_host_that_runs_the_next_up_for_its_caller(paths):
    record = host_record(paths)
    assert is_ours(record) and cmdline(record.pid).startswith(f"{warm.TITLE} --state-dir {paths.root}")
    assert (paths.root / warm.SOCKET_NAME).stat().st_mode & 0o777 == 0o600
    found = stack_processes(paths.root.parent)[STACK]
    assert [r.pid for r in found if r.role == "warm"] == [record.pid], "an orphan sweep knows it by its title"
    try:
        code, out, err, caller = finished("local", "up", "--stack", STACK, "--config", "students=2", "--json")
        assert code == 0, err
        assert [h["student"] for h in json.loads(out)["hosts"]].count("student02") == 2
        (server,) = served_for(caller)
        assert server not in (caller, record.pid), "a fresh child of the host ran it, not the caller"
    finally:
        assert finished("local", "up", "--stack", STACK, "--config", "students=1")[0] == 0


def test_what_the_caller_sees_is_the_commands_own_output_and_exit_status(paths, tmp_path):
    (tmp_path / "names.txt").write_text("Ana María\nBo\n")
    for argv in (["local", "preview", "--stack", STACK, "--config", "students=2", "--json"],
                 ["local", "preview", "--stack", STACK, "--roster", "names.txt", "--json"],  # the caller's directory
                 ["local", "up", "--stack", STACK, "--config", "students=two"],
                 ["local", "up", "--stack", STACK, "--config", "students=1", "--region", "eu-west-1"]):
        code, out, err, caller = finished(*argv, cwd=tmp_path)
        assert served_for(caller), argv
        cold_code, cold_out, cold_err, _ = finished(*argv, cold=True, cwd=tmp_path)
        assert (code, comparable(out), err) == (cold_code, comparable(cold_out), cold_err), argv
    assert code == 2 and err.count("\n") == 1 and "--region eu-west-1" in err


def test_ctrl_c_and_sigterm_reach_the_command_it_runs(paths):
    with stack_lock(paths, "held by the test"):  # the served `up --wait` blocks on the lock until interrupted
        for sig, status, name in ((signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")):
            process = rolelab("local", "up", "--stack", STACK, "--config", "students=1", "--wait")
            assert wait_for(lambda p=process.pid: served_for(p), 30), "the warm host took the command"
            process.send_signal(sig)
            _, err = process.communicate(timeout=60)
            assert process.returncode == status and f"rolelab: interrupted ({name})" in err, (sig, err)


def test_a_caller_killed_outright_takes_its_command_with_it(paths):
    with stack_lock(paths, "held by the test"):
        process = rolelab("local", "up", "--stack", STACK, "--config", "students=1", "--wait")
        assert wait_for(lambda: served_for(process.pid), 30)
        (server,) = served_for(process.pid)
        process.kill()
        process.communicate(timeout=30)
        assert wait_for(lambda: not Path(f"/proc/{server}").exists() or "Z" in _state(server), 10), \
            "the command went on without its caller"
    assert finished("local", "up", "--stack", STACK, "--config", "students=1")[0] == 0, "and left no lock held"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return "gone"


def test_a_host_older_than_the_code_on_disk_leaves_and_the_command_runs_cold(paths):
    record = host_record(paths)
    source = Path(warm.__file__)
    before = source.stat()
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    try:
        code, out, err, caller = finished("local", "preview", "--stack", STACK, "--config", "students=1")
        assert code == 0 and "no changes" in out, err
        assert not served_for(caller), "old code must not serve"
        assert wait_for(lambda: not is_ours(record), 10), "the stale host left"
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    # The next up that runs the program anyway leaves a new host, on today's code, and it serves the one after.
    code, _, err, caller = finished("local", "up", "--stack", STACK, "--config", "students=2")
    assert code == 0 and not served_for(caller), err
    renewed = host_record(paths)
    assert renewed.pid != record.pid and is_ours(renewed)
    with stack_lock(paths, "the next command"):  # the fork let go of the up's lock before the up went on
        held = {os.path.realpath(f"/proc/{renewed.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{renewed.pid}/fd")}
        assert str(paths.lock_file) not in held
    code, _, err, caller = finished("local", "up", "--stack", STACK, "--config", "students=1")
    assert code == 0 and served_for(caller), err


def test_last_down_stops_the_host_and_an_in_process_up_never_forks_one(paths, tmp_path):
    record = host_record(paths)  # the module's stack, taken down here (the fixture's down is idempotent)
    code, out, _, _ = finished("local", "down", "--stack", STACK)
    assert code == 0 and "host(s) stopped; state removed" in out, out  # stopping the host by PID is no news
    assert not is_ours(record) and not paths.root.exists()
    warm.host_here(StackPaths("in-process", tmp_path), command=lambda *a, **k: 0)  # `hosting` is the script's
    assert not (tmp_path / warm.SOCKET_NAME).exists() and warm.hosting is False


SLOW_FORK = """
import fcntl, gc, os, sys, time
from pathlib import Path
from labs.cli import warm
from labs.labcloud.locks import stack_lock
from labs.labcloud.paths import StackPaths

paths = StackPaths("slow-fork", Path(sys.argv[1]) / "stacks" / "slow-fork")
paths.pids.mkdir(parents=True)
gc.collect = lambda *args: time.sleep(3)  # a loaded machine: the new host is slow to tidy up
warm.hosting = True
with stack_lock(paths, "being brought up"):
    warm.host_here(paths, command=lambda *args, **kwargs: 0)
probe = os.open(paths.lock_file, os.O_RDWR)
fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while the host still holds the up's lock
print("free")
"""


def test_the_up_that_forks_a_host_leaves_its_lock_and_streams_free_even_when_the_host_is_slow(tmp_path):
    started = __import__("time").monotonic()
    done = subprocess.run([sys.executable, "-c", SLOW_FORK, str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout == "free\n", done.stderr[-600:]
    assert __import__("time").monotonic() - started < 3, "the caller's output ended before the host was done"

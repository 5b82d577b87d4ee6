"""Processes we start: recorded by PID, stopped by PID (never by name), and awaited by readiness."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class PidRecord:
    """A PID plus a marker from its command line, so a recycled PID is never signalled."""

    pid: int
    marker: str
    role: str  # "cloud", "sshd"
    port: int | None = None

    def write(self, directory: Path, name: str) -> Path:
        directory.mkdir(exist_ok=True)  # never parents: a stack being removed must stay removed
        path = directory / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)
        return path

    @classmethod
    def read_all(cls, directory: Path) -> list[tuple[Path, PidRecord]]:
        records = []
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            try:
                records.append((path, cls(**json.loads(path.read_text()))))
            except (ValueError, TypeError, OSError):
                continue  # a torn write: the process it named is found by its sibling records
        return records


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_ours(record: PidRecord) -> bool:
    """Alive, not a zombie, and still the process we started (its command line has our marker)."""
    try:
        stat = Path(f"/proc/{record.pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return record.marker in cmdline(record.pid)


def reap(pid: int) -> None:
    """Collect an exited child of ours so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child (started by another process): its parent reaps it


def process_tree() -> dict[int, list[int]]:
    """Parent PID -> child PIDs, read once from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[-1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    return children


def descendants(pid: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    """Every process below `pid` (children, their children...), found through /proc.

    sshd gives each connection its own session, so a process group does not reach them;
    the parent chain does, as long as it is read before the parent goes away."""
    children = tree if tree is not None else process_tree()
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop()
        found.append(child)
        queue.extend(children.get(child, []))
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _gone(pid: int) -> bool:
    reap(pid)
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


def stop_pid(record: PidRecord, grace: float = 3.0, hard: bool = False) -> bool:
    """SIGTERM the process and everything below it, wait up to `grace`, then SIGKILL.
    hard=True kills at once (a crash, for fault injection). True if it was running."""
    if not is_ours(record):
        reap(record.pid)
        return False
    family = [record.pid, *descendants(record.pid)]
    if not hard:
        _signal_all(family, signal.SIGTERM)
        if wait_for(lambda: all(_gone(p) for p in family), grace):
            return True
    _signal_all(family, signal.SIGKILL)
    return wait_for(lambda: all(_gone(p) for p in family), 2.0)


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll a readiness condition with a short, growing interval; never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A currently free loopback TCP port for a process that binds it a moment later.

    Chosen below the kernel's ephemeral range, where outgoing connections (ours and every
    other program's) never land, so the port is not taken in between."""
    low, _ = _ephemeral_range()
    for _ in range(200):
        port = random.randint(max(1024, low - 12000), low - 1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded range: let the kernel pick
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def ssh_banner(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> str | None:
    """The SSH identification string if an SSH server answers there, else None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            data = sock.recv(256)
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return line if line.startswith("SSH-2.0-") else None


def _titled_as(role: str, words: list[str]) -> bool:
    """A lab cloud runs labs.labcloud.server; a warm host (labs.cli.warm) titles itself; an sshd is neither."""
    cloud, warm = "labs.labcloud.server" in words, "rolelab-warm-host" in words[:1]
    return {"cloud": cloud, "warm": warm, "sshd": not cloud and not warm}[role]


def stack_processes(stacks_dir: Path) -> dict[str, list[PidRecord]]:
    """Every lab cloud, warm host and sshd of the stacks under `stacks_dir`, found by their command lines, not by
    PID records: they name the stack's state directory (the cloud and the warm host: `--state-dir <stacks_dir>/S`; an sshd:
    `-f <stacks_dir>/S/hosts/<id>/sshd_config`), so a stack whose state was deleted is still found.
    Each record's marker is that path, so `is_ours` and `stop_pid` keep working on them."""
    found: dict[str, list[PidRecord]] = {}
    prefix = str(stacks_dir) + "/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        words = cmdline(int(entry)).split()  # sshd rewrites its title into one space-separated string
        for flag, role in (("--state-dir", "cloud"), ("--state-dir", "warm"), ("-f", "sshd")):
            if flag not in words[:-1] or not _titled_as(role, words):
                continue
            path = words[words.index(flag) + 1]
            if not path.startswith(prefix):
                continue
            stack, _, rest = path[len(prefix):].partition("/")
            if (role != "sshd" and not rest) or (role == "sshd" and rest.endswith("/sshd_config")):
                record = PidRecord(int(entry), path, role)
                if is_ours(record):
                    found.setdefault(stack, []).append(record)
    return found

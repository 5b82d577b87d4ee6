"""One change to a stack at a time: `local up`, `local down`, a drill and a demo take the stack's lock.

An flock on `$ROLELAB_HOME/locks/<stack>.lock` (kept outside the stack directory, so it survives
the state's removal). The kernel drops it when its holder exits, however it exits, so a crash
never leaves a stale lock. The holder writes what it is doing and its PID into the file, for the
one line the next comer reads. Re-entrant within a process (`demo` holds it across up and down).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from labs.core.errors import UsageError
from labs.labcloud.paths import StackPaths

_held: dict[str, int] = {}  # stack -> depth, for this process
_fds: dict[str, int] = {}  # stack -> the fd whose flock is the lock


def forget_held(close: bool = False) -> None:
    """In a forked child: the parent's locks are not this process's. close: drop the child's copies of their
    fds now (an flock lasts while any copy is open, so the parent's release would not end it)."""
    if close:
        for fd in _fds.values():
            os.close(fd)
    _held.clear()
    _fds.clear()


@contextmanager
def stack_lock(paths: StackPaths, doing: str, wait: bool = False) -> Iterator[None]:
    """Hold the stack's lock while `doing` ("being brought up"); busy: exit 2 naming the holder, or wait."""
    if paths.stack in _held:
        _held[paths.stack] += 1
        try:
            yield
        finally:
            _held[paths.stack] -= 1
        return
    paths.lock_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "busy"
            if not wait:
                raise UsageError(f"stack {paths.stack!r} is {holder}; wait for it to finish "
                                 f"(or add --wait), or use another --stack") from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{doing} by PID {os.getpid()}\n".encode(), 0)
        _held[paths.stack] = 1
        _fds[paths.stack] = fd
        try:
            yield
        finally:
            del _held[paths.stack]
            del _fds[paths.stack]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock

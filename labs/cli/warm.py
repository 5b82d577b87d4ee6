"""A warm rolelab per running stack: `local up` and `local preview` on it skip the second of start-up.

A converging `local up` (a late student, a policy change) runs the Pulumi program again; importing
Pulumi, pulumi_aws and boto3 for it costs more CPU than applying one student's change. The first
`rolelab local up` of a stack has imported them before it runs the program. There, once, it forks:
the child becomes the stack's warm host. It listens on `<stack>/warm.sock`. For each later
`rolelab local up|preview` of that stack, the console script connects and the host forks again. That
child takes the caller's stdin, stdout and stderr (passed over the socket), its environment, working
directory and arguments, runs the command as the CLI would (labs.cli.main.main), and sends back the
exit status. The caller forwards Ctrl-C, SIGTERM and SIGHUP to it; if the caller dies, it dies too.

The warm host only saves time; it never changes what a command does. Whenever anything is unusual
(no host, another checkout or interpreter, code changed on disk since the host started,
ROLELAB_WARM=0) the caller runs the command itself. `local down` stops the host by PID with the
rest of the stack, and the host leaves by itself once its stack's lab cloud is gone.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path

SOCKET_NAME = "warm.sock"
TITLE = "rolelab-warm-host"  # its command line, which `local down` and orphan sweeps recognise
CONVERGING = {("local", "up"), ("local", "preview")}
_HEADER = struct.Struct("!I")
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# Only the console script sets this: a test or a library calling main() in-process never forks itself.
hosting = False


def enabled() -> bool:
    return os.environ.get("ROLELAB_WARM", "1") != "0"


# -- the caller's side ------------------------------------------------------------------------------------


def served(argv: list[str]) -> int | None:
    """Run `argv` in its stack's warm host and return the exit status; None: run it here instead."""
    path = _socket_for(argv) if enabled() else None
    if path is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
        umask = os.umask(0o077)
        os.umask(umask)
        request = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "umask": umask,
                              "code": code_identity(), "caller": os.getpid()})
        socket.send_fds(conn, [_frame(request)], [0, 1, 2])
        started = _read(conn)
    except OSError:  # no host (a crash, a stale socket), or a std stream closed: the command runs here
        conn.close()
        return None
    if not started or "pid" not in started:  # refused (other code, ...): the command runs here
        conn.close()
        return None
    with conn:
        _forward_signals(started["pid"])
        try:
            done = _read(conn)
        except OSError:
            done = None
    if done is None:
        print(f"rolelab: internal error: the command's process (PID {started['pid']}) ended without an exit "
              "status; see the log under ROLELAB_HOME", file=sys.stderr)
        return 70
    return int(done["exit"])


def _socket_for(argv: list[str]) -> Path | None:
    """The socket of the stack a converging command names, if that stack has a warm host."""
    words = [a for a in argv if a not in ("-v", "-vv", "-vvv", "--verbose")]
    if tuple(words[:2]) not in CONVERGING:
        return None
    stack = None
    for index, arg in enumerate(words):
        if arg in ("--stack", "-s") and index + 1 < len(words):
            stack = words[index + 1]
        elif arg.startswith("--stack="):
            stack = arg.split("=", 1)[1]
    from labs.core.errors import RolelabError
    from labs.labcloud.paths import DEFAULT_STACK, StackPaths

    try:
        path = StackPaths.for_stack(stack or DEFAULT_STACK).root / SOCKET_NAME
    except RolelabError:  # a bad stack name: the command itself says so
        return None
    return path if path.is_socket() else None


def _forward_signals(pid: int) -> None:
    def forward(signum: int, _frame) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARDED:
        signal.signal(sig, forward)


def code_identity() -> dict[str, str]:
    import labs

    return {"labs": os.path.dirname(os.path.abspath(labs.__file__)), "python": sys.executable, "version": sys.version}


# -- the host's side --------------------------------------------------------------------------------------


def host_here(paths, command: Callable[..., int]) -> None:
    """Fork the stack's warm host from this process, now warm, and return at once (in this process).

    Called by a fresh `local up` after its imports and before its program runs: one thread, no
    Pulumi state yet. The host's PID is recorded with the stack's processes, for `local down`.
    `command(argv, served_for=PID)` runs one command line (labs.cli.main.main)."""
    from labs.labcloud.procs import PidRecord, is_ours

    root = paths.root
    if not hosting or not enabled() or threading.active_count() != 1:
        return
    if any(r.role == "warm" and is_ours(r) for _, r in PidRecord.read_all(paths.pids)):
        return  # one host per stack (a caller that ran cold beside a live one, e.g. ROLELAB_WARM=0 then 1)
    path = root / SOCKET_NAME
    if len(os.fsencode(path)) >= 100:  # AF_UNIX paths stop at 108 bytes: a deep ROLELAB_HOME runs cold
        return
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(8)
    marker = f"{TITLE} --state-dir {root}"
    sys.stdout.flush()
    sys.stderr.flush()
    let_go, dropped = os.pipe()
    pid = os.fork()
    if pid:
        listener.close()
        os.close(dropped)
        PidRecord(pid, marker, "warm").write(paths.pids, "warm")
        # Until the host has let go of this process's stack lock and std streams, the next command on the stack
        # would find it busy, and whoever reads this process's output would wait for the host to exit.
        select.select([let_go], [], [], 5.0)
        os.close(let_go)
        return
    try:  # the host: never returns into the caller's stack (its `except` would tear the stack down)
        os.close(let_go)
        _let_go_of_the_caller(listener.fileno(), dropped)
        setproctitle(marker)
        _serve(listener, paths, command)
    finally:
        os._exit(0)


def _serve(listener: socket.socket, paths, command: Callable[..., int]) -> None:
    os.setsid()  # no terminal: a Ctrl-C in the caller's terminal reaches the caller, which forwards it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the request children are reaped by the kernel
    stamps = _module_stamps()
    listener.settimeout(2.0)
    while _stack_alive(paths):
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        if os.fork() == 0:
            listener.close()
            try:
                _serve_one(conn, stamps, command)
            finally:
                os._exit(70)
        conn.close()


def _let_go_of_the_caller(keep_fd: int, dropped: int) -> None:
    """Drop what the forking `local up` holds: its stack lock and std streams first (it waits for that, on
    `dropped`), then its log handlers and every other fd."""
    import gc
    import logging

    from labs.labcloud import locks

    locks.forget_held(close=True)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.close(dropped)  # the caller goes on
    for name in ("rolelab", ""):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    gc.collect()  # garbage holding an fd closes it now, while the fd is still the one it opened
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep_fd:
            try:
                os.close(fd)
            except OSError:
                pass  # the directory listing's own fd


def _serve_one(conn: socket.socket, stamps: dict[str, int], command: Callable[..., int]) -> None:
    """A request child: become the caller's command, run it, send its exit status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    request = json.loads(_rest(conn, data))
    stale = _stale(request, stamps)
    refused = stale or _take_on(request, fds)
    if refused:
        _send(conn, {"refused": refused})
        if stale:
            os.kill(os.getppid(), signal.SIGTERM)  # a host serving old code leaves; the next `up` runs cold
        os._exit(0)
    global hosting
    hosting = False  # a served command never forks a host of its own
    sys.stdout.reconfigure(line_buffering=os.isatty(1))
    sys.argv = ["rolelab", *request["argv"]]
    _send(conn, {"pid": os.getpid()})
    threading.Thread(target=_die_with_caller, args=(conn,), daemon=True, name="warm-caller").start()
    import logging

    code = command(request["argv"], served_for=request["caller"])
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    _send(conn, {"exit": code})
    os._exit(code)


def _take_on(request: dict, fds: list[int]) -> str | None:
    """Become the caller: its working directory, umask, environment and std streams. None, or why not."""
    if len(fds) != 3:
        return "no std streams"
    try:
        os.chdir(request["cwd"])
    except OSError as error:  # the caller's directory is gone: its own process reports that as it would
        return f"working directory: {error.strerror}"
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    return None


def _die_with_caller(conn: socket.socket) -> None:
    """The caller never writes again: end of stream means it is gone, as a cold command would be."""
    try:
        conn.recv(1)
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _stack_alive(paths) -> bool:
    """Its stack's lab cloud still runs (by its PID record; the host starts before the cloud says it is ready)."""
    from labs.labcloud.client import CloudClient
    from labs.labcloud.procs import is_ours

    record = CloudClient(paths).cloud_record()
    return paths.root.is_dir() and record is not None and is_ours(record)


def _module_stamps() -> dict[str, int]:
    stamps = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            try:
                stamps[path] = os.stat(path).st_mtime_ns
            except OSError:
                continue
    return stamps


def _stale(request: dict, stamps: dict[str, int]) -> str | None:
    if request.get("code") != code_identity():
        return "another checkout or interpreter"
    for path, stamp in stamps.items():
        try:
            if os.stat(path).st_mtime_ns != stamp:
                return f"{path} changed"
        except OSError:
            return f"{path} is gone"
    return None


# -- messages: a length, then JSON --------------------------------------------------------------------------


def _frame(text: str) -> bytes:
    body = text.encode()
    return _HEADER.pack(len(body)) + body


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(_frame(json.dumps(message)))


def _rest(conn: socket.socket, data: bytes) -> bytes:
    """The message whose first bytes are `data`."""
    while len(data) < _HEADER.size:
        data += _recv(conn)
    (size,) = _HEADER.unpack(data[:_HEADER.size])
    body = data[_HEADER.size:]
    while len(body) < size:
        body += _recv(conn)
    return body


def _recv(conn: socket.socket) -> bytes:
    chunk = conn.recv(1 << 16)
    if not chunk:
        raise ConnectionResetError("end of stream")
    return chunk


def _read(conn: socket.socket) -> dict | None:
    """The next message, or None at end of stream."""
    try:
        return json.loads(_rest(conn, b""))
    except ConnectionResetError:
        return None

"""Run the CLI in a pseudo-terminal of a given size, as a person at a terminal would see it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
# what ends a run of characters on one screen line: a newline, a carriage return, a cursor move or erase
LINE_BREAK = re.compile(r"\r|\n|\x1b\[[0-9;]*[ABCDEFGHJK]")


@dataclass
class Screen:
    rc: int
    raw: str  # with escape sequences
    seconds: float

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw)

    @property
    def widest(self) -> str:
        """The longest run of characters the program wrote on one screen line."""
        return max((ANSI.sub("", part) for part in LINE_BREAK.split(self.raw)), key=len, default="")

    @property
    def coloured(self) -> bool:
        """Any foreground colour (bold or dim alone are not colour, and NO_COLOR allows them)."""
        codes = {int(c) for sgr in re.findall(r"\x1b\[([0-9;]*)m", self.raw) for c in sgr.split(";") if c}
        return bool(codes & ({*range(30, 39)} | {*range(90, 98)}))


def run_in_terminal(argv: list[str], columns: int = 100, rows: int = 40, env: dict[str, str] | None = None,
                    timeout: float = 180, program: list[str] | None = None, cwd: str | None = None,
                    term: str = "xterm-256color") -> Screen:
    """`rolelab ARGV` (or `program`) with stdin, stdout and stderr on one pty `columns` wide;
    returns everything it printed."""
    main, child = os.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    environment = dict(env or os.environ, COLUMNS=str(columns), LINES=str(rows), TERM=term)
    environment.pop("NO_COLOR", None) if env is None else None
    started = time.monotonic()
    process = subprocess.Popen(program or [sys.executable, "-m", "labs.cli", *argv], stdin=child, stdout=child,
                               stderr=child, env=environment, close_fds=True, cwd=cwd, start_new_session=True)
    os.close(child)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 1.0)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # EIO: the child side closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{argv} still running after {timeout} s")
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
    return Screen(process.returncode, b"".join(chunks).decode(errors="replace"), time.monotonic() - started)

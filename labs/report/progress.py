"""Live progress for people, on stderr, so a person sees the run move and is never left in silence.

At a terminal: one live line per host still being checked (or waited for), which disappears
when the checks are done; the report that follows says what happened. Piped (a log, CI): one
plain line per finding and per SSH wait, stable for grep.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from labs.lesson.findings import Finding, Status
from labs.report.console import STYLES, cut, make_console
from labs.report.safe import terminal_safe

MARKS = {Status.PASS: "ok  ", Status.FAIL: "FAIL", Status.UNREACHABLE: "UNRE"}


def progress_line(result: Finding) -> str:
    took = f"{result.seconds:.2f}s" + (f" (settled after {result.attempts} tries)" if result.converged_after else "")
    host, check, observed = (terminal_safe(t) for t in (result.host.label, result.check, result.observed))
    return f"  {MARKS[result.status]} {host:<24} {check:<24} {cut(observed, 40):<40} {took}"


def waiting_line(host: str, attempt: int, of: int, seconds: float) -> str:
    return f"waiting for SSH on {host} (attempt {attempt}/{of}, {seconds:.0f} s)"


@dataclass
class _Host:
    total: int
    done: int = 0
    failed: int = 0
    unreachable: int = 0
    waiting: str = ""  # the latest SSH wait, until the host answers
    last: str = ""


@dataclass
class _Board:
    """What the live lines show: each host's checks so far."""
    hosts: dict[str, _Host] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def lines(self, width: int, height: int) -> Group:
        active = [(label, h) for label, h in self.hosts.items() if h.done < h.total]
        done = sum(h.done for h in self.hosts.values())
        total = sum(h.total for h in self.hosts.values())
        failed = sum(h.failed for h in self.hosts.values())
        unreachable = sum(h.unreachable for h in self.hosts.values())
        shown = active[:max(1, height - 3)]
        rows = [self._line(label, h, width) for label, h in shown]
        if len(active) > len(shown):
            rows.append(Text(f"  … and {len(active) - len(shown)} more hosts", style="dim"))
        status = (f"{done}/{total} checks" + (f", {failed} failed" if failed else "")
                  + (f", {unreachable} unreachable" if unreachable else ""))
        rows.append(Text(cut(f"  {status}, {len(self.hosts) - len(active)}/{len(self.hosts)} hosts done, "
                             f"{time.monotonic() - self.started:.0f} s", width), style="bold"))
        return Group(*rows)

    @staticmethod
    def _line(label: str, h: _Host, width: int) -> Text:
        if h.waiting and not h.done:
            return Text(cut(f"  {h.waiting}", width), style=STYLES[Status.UNREACHABLE])
        text = Text(f"  {label:<24} {h.done}/{h.total} ")
        if h.failed:
            text.append(f"{h.failed} failed ", style=STYLES[Status.FAIL])
        if h.unreachable:
            text.append("unreachable ", style=STYLES[Status.UNREACHABLE])
        text.append(h.last, style="dim")
        text.truncate(width, overflow="ellipsis")
        return text


class Progress:
    """Shows each result as it lands (stderr): live lines at a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True, live: bool | None = None):
        self.stream = stream or sys.stderr  # looked up now: tests and pipes swap sys.stderr
        self.enabled = enabled
        self.console: Console = make_console(self.stream)
        self.live = enabled and (self.console.is_terminal if live is None else live)
        self._board: _Board | None = None
        self._display: Live | None = None
        self._lock = threading.Lock()

    @contextmanager
    def running(self, checks_per_host: Mapping[str, int]) -> Iterator[None]:
        """While checks run on these hosts: the live lines (at a terminal), gone again afterwards."""
        if not self.live:
            yield
            return
        self._board = _Board({label: _Host(n) for label, n in checks_per_host.items()})
        self._display = Live(console=self.console, transient=True, refresh_per_second=8,
                             get_renderable=lambda: self._board.lines(self.console.width, self.console.height))
        try:
            with self._display:
                yield
        finally:
            self._board = self._display = None

    def __call__(self, result: Finding) -> None:
        if not self.enabled:
            return
        with self._lock:
            host = self._board.hosts.get(result.host.label) if self._board else None
            if host is not None:
                host.done += 1
                host.failed += result.status is Status.FAIL
                host.unreachable += result.status is Status.UNREACHABLE
                host.last = f"{result.check}: {result.observed}"
                return
        if self.live:  # outside a block of checks (an API answer): the drill's notes say what passed
            if result.status is not Status.PASS:
                self.console.print(Text(progress_line(result), style=STYLES[result.status]),
                                   overflow="ellipsis", no_wrap=True)
        else:
            self._write(progress_line(result))

    def waiting(self, host: str, attempt: int, of: int, seconds: float) -> None:
        """A host slow to answer SSH: say so, and keep saying how long (never a silent wait)."""
        if not self.enabled:
            return
        line = waiting_line(host, attempt, of, seconds)
        with self._lock:
            state = self._board.hosts.get(host) if self._board else None
            if state is not None:
                state.waiting = line
                return
        self.say(f"  {line}")

    def say(self, text: str) -> None:
        if not self.enabled:
            return
        text = terminal_safe(text)  # may quote a host's output
        if self.live:
            self.console.print(text, highlight=False, markup=False)
        else:
            self._write(text)

    def _write(self, line: str) -> None:
        with self._lock:  # one write per line: checks land from many threads at once
            self.stream.write(line + "\n")
            self.stream.flush()


def per_host(labels: list[str]) -> dict[str, int]:
    return dict(Counter(labels))

"""Live progress for people: each finding as it lands, on stderr, so a person sees the run move."""

from __future__ import annotations

import sys
from typing import TextIO

from labs.lesson.findings import Finding, Status
from labs.report.terminal import terminal_safe

MARKS = {Status.PASS: "ok  ", Status.FAIL: "FAIL", Status.UNREACHABLE: "UNRE"}
COLOURS = {Status.PASS: "\033[32m", Status.FAIL: "\033[31m", Status.UNREACHABLE: "\033[33m"}


def progress_line(result: Finding, colour: bool = False) -> str:
    mark = MARKS[result.status]
    if colour:
        mark = f"{COLOURS[result.status]}{mark}\033[0m"
    took = f"{result.seconds:.2f}s" + (f" (settled after {result.attempts} tries)" if result.converged_after else "")
    host, check, observed = (terminal_safe(t) for t in (result.host.label, result.check, result.observed))
    return f"  {mark} {host:<24} {check:<24} {observed:<40} {took}"


class Progress:
    """Prints each result as it lands (stderr), so a person sees the run move."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream or sys.stderr  # looked up now: tests and pipes swap sys.stderr
        self.enabled = enabled
        self.colour = self.stream.isatty()

    def __call__(self, result: Finding) -> None:
        if self.enabled:
            print(progress_line(result, self.colour), file=self.stream, flush=True)

    def say(self, text: str) -> None:
        if self.enabled:
            print(terminal_safe(text), file=self.stream, flush=True)  # may quote a host's output

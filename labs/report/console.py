"""The terminal, as rich sees it: colour only at a TTY (and never with NO_COLOR), the real width."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console

from labs.lesson.findings import Status

STYLES = {Status.PASS: "green", Status.FAIL: "bold red", Status.UNREACHABLE: "yellow"}


def make_console(stream: TextIO) -> Console:
    """A console on `stream`; rich detects a terminal itself and honours NO_COLOR and COLUMNS."""
    return Console(file=stream, highlight=False, emoji=False)


def cut(text: str, width: int) -> str:
    """One line of at most `width` characters, an ellipsis where it was cut (the whole is in -v and JSON)."""
    line = " ".join(text.split()) if "\n" in text else text
    return line if len(line) <= width else line[:max(0, width - 1)] + "…"

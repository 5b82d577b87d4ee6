"""The docs as tests: fenced blocks marked `<!-- runnable -->` run as a reader would run them.

A runnable block is a ```bash fence right after the marker; the ```text fence that follows it
(if any) is its documented output. The block runs in bash, in a pseudo-terminal (TERM=dumb:
what a person sees, without the live lines that vanish anyway), from a stand-in checkout
whose `.venv/bin/activate` and `scripts/demo.sh` lead to this tree's `rolelab` (the setup
they do first has its own tests). Blocks of a file run in order on one shared stack.

The output matches when every documented line appears, in order, among the lines printed,
after both sides had their volatile parts replaced by placeholders (instance ids, ports,
times, ids AWS makes). `...` on a line of its own skips any lines; inside a line, any text.
Marker options: `<!-- runnable on=HOST -->` runs the block on that host through `rolelab ssh`
(commands a reader types in the host's shell); `rc=N` expects that exit status (default 0).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^<!--\s*runnable(?P<options>(?:\s+\w+=\S+)*)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")

PLACEHOLDERS = [  # (pattern, placeholder): what changes between runs, in the order applied
    (re.compile(r"\bi-[0-9a-f]{17}\b"), "i-<id>"),
    (re.compile(r"\biip-assoc-[0-9a-f]+\b"), "iip-assoc-<id>"),
    (re.compile(r"\bAROA[A-Z0-9]{10,}\b"), "AROA<id>"),
    (re.compile(r"\bASIA[A-Z0-9]{10,}\b"), "ASIA<id>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\*{16}\S{4}"), "****<key>"),  # aws configure list masks all but 4
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"\b\d+(?:\.\d+)? s\b"), "<n> s"),
    (re.compile(r"\b\d+\.\d\d\b"), "<n>"),
    (re.compile(r"/tmp/\S+|~/\.local/state/rolelab\S*"), "<path>"),
    (re.compile(r"pid +\d+|sshd pid \d+|cloud pid +\d+"), "pid <n>"),
]


@dataclass
class Block:
    source: str  # file:line, for messages
    code: str
    expected: str | None
    options: dict[str, str] = field(default_factory=dict)

    def script(self) -> str:
        host = self.options.get("on")
        if host is None:
            return self.code
        return f"rolelab ssh {host} -- {shlex.quote(self.code)}"


def runnable_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if not marker:
            i += 1
            continue
        start = i + 1
        assert start < len(lines) and FENCE.match(lines[start]) and FENCE.match(lines[start]).group(1) == "bash", \
            f"{path.name}:{i + 1}: a runnable marker must come right before a ```bash fence"
        code, i = _fenced(lines, start)
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        expected = None
        if j < len(lines) and FENCE.match(lines[j]) and FENCE.match(lines[j]).group(1) == "text":
            expected, i = _fenced(lines, j)
        options = dict(o.split("=", 1) for o in marker.group("options").split())
        blocks.append(Block(f"{path.name}:{start + 1}", code, expected, options))
    return blocks


def fenced_blocks(path: Path, language: str) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if FENCE.match(line) and FENCE.match(line).group(1) == language)


def _fenced(lines: list[str], start: int) -> tuple[str, int]:
    end = start + 1
    while not FENCE.match(lines[end]) or FENCE.match(lines[end]).group(1):
        end += 1
    return "\n".join(lines[start + 1:end]), end + 1


def normalize(text: str) -> list[str]:
    out = []
    for line in text.replace("\r", "").splitlines():
        for pattern, placeholder in PLACEHOLDERS:
            line = pattern.sub(placeholder, line)
        out.append(" ".join(line.split()))
    return out


def missing(expected: str, printed: str) -> str | None:
    """None when every documented line appears in order; else the first one that does not."""
    actual = normalize(printed)
    position = 0
    for want in normalize(expected):
        if not want or want == "...":
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")))
        while position < len(actual) and not pattern.fullmatch(actual[position]):
            position += 1
        if position == len(actual):
            return want
        position += 1
    return None

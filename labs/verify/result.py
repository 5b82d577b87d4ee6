"""CommandResult: what one command on a host did. run() returns it; it never raises on exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CommandResult:
    command: str
    rc: int
    stdout: str
    stderr: str
    seconds: float = 0.0
    host: str = field(default="", compare=False)

    @property
    def succeeded(self) -> bool:
        return self.rc == 0

    @property
    def failed(self) -> bool:
        return not self.succeeded

    def stderr_tail(self, lines: int = 3) -> str:
        return " | ".join(self.stderr.strip().splitlines()[-lines:])

    def __str__(self) -> str:
        return (f"Command: {self.command}\nExit code: {self.rc}\n"
                f"=== stdout ===\n{self.stdout.rstrip()}\n=== stderr ===\n{self.stderr.rstrip()}\n")

"""CommandResult: what one command on a host did. run() returns it; it never raises on exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class CommandResult:
    command: str
    rc: int
    stdout: str
    stderr: str
    seconds: float = 0.0
    host: str = field(default="", compare=False)

    def redacted(self) -> CommandResult:
        """The same result with secrets masked in its output: what reports may show."""
        from labs.core.redact import redact

        return replace(self, stdout=redact(self.stdout), stderr=redact(self.stderr))

    def stderr_tail(self, lines: int = 3) -> str:
        return " | ".join(self.stderr.strip().splitlines()[-lines:])

    def __str__(self) -> str:
        return (f"Command: {self.command}\nExit code: {self.rc}\n"
                f"=== stdout ===\n{self.stdout.rstrip()}\n=== stderr ===\n{self.stderr.rstrip()}\n")

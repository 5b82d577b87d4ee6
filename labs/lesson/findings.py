"""One result model for everything a run observed: checks, drill actions, walkthrough steps.

A Finding is flat data (what was expected, what was seen, how long it took, the evidence,
the hint), apart from whatever produced it, so reports render it without knowing the
runner, and drills or the walkthrough record one without inventing a fake check.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from labs.core.outputs import HostRecord
from labs.core.result import CommandResult


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Finding:
    phase: str  # "verify", a drill's step ("detach-policy/re-attached"), a walkthrough stage
    host: HostRecord
    check: str  # the check's id, e.g. iam-list-users
    title: str  # what a person would type
    command: str
    expected: str
    observed: str
    status: Status
    attempts: int = 1
    seconds: float = 0.0
    evidence: CommandResult | None = None  # redacted: reports never show secrets
    hint: str = ""  # where to look, from what was observed (empty when it passed)
    note: str = ""  # detail: the error behind an unreachable host, a created-and-deleted user
    converged_after: float | None = None  # seconds until an eventual expectation held, if it took retries

    @property
    def label(self) -> str:
        return f"{self.phase}:{self.host.label}:{self.check}"

    @property
    def student(self) -> str:
        return self.host.student

    def with_hint(self, hint: str) -> Finding:
        return replace(self, hint=hint)

    def to_dict(self) -> dict:
        return {
            "phase": self.phase, "student": self.host.student, "host": self.host.name,
            "instance_id": self.host.instance_id, "check": self.check, "title": self.title,
            "command": self.command, "expected": self.expected, "observed": self.observed,
            "status": self.status.value, "attempts": self.attempts, "seconds": round(self.seconds, 3),
            "converged_after": self.converged_after, "note": self.note, "hint": self.hint,
            "exit_code": self.evidence.rc if self.evidence else None,
            "stderr_tail": self.evidence.stderr_tail() if self.evidence else "",
        }


def judge(expected: str, observed: str) -> Status:
    """The one pass rule: the observation is exactly the expectation."""
    return Status.PASS if observed == expected else Status.FAIL


def worst(findings: list[Finding]) -> Status | None:
    """A failed expectation wins over an unreachable host, as in the exit status; None if nothing ran."""
    statuses = {f.status for f in findings}
    return next((s for s in (Status.FAIL, Status.UNREACHABLE, Status.PASS) if s in statuses), None)


def observation(phase: str, host: HostRecord, check: str, title: str, expected: str, observed: str,
                seconds: float = 0.0, hint: str = "", command: str | None = None) -> Finding:
    """An operator-side observation (an API answer, the account's state), judged like any check."""
    status = judge(expected, observed)
    return Finding(phase, host, check, title, command or title, expected, observed, status, 1, seconds,
                   hint=hint if status is not Status.PASS else "")

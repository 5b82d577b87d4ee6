"""A run's report: its findings, what the drills did, and the exit status they add up to.

The exit status is named (labs.core.errors.ExitStatus): 0 all passed; 1 the lab is wrong (an
expectation failed, or a host key did not match); 3 infrastructure did not answer. A
failed expectation wins over an unreachable host: the lab is wrong either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from labs.core.errors import ExitStatus
from labs.lesson.findings import Finding, Status, worst

EXIT_MEANING = {ExitStatus.OK: "the lab matches the lesson", ExitStatus.LAB_WRONG: "the lab is wrong",
                ExitStatus.UNREACHABLE: "infrastructure did not answer"}

__all__ = ["EXIT_MEANING", "Report", "worst"]


@dataclass
class Report:
    stack: str
    mode: str
    started: float = field(default_factory=time.time)
    results: list[Finding] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # what the drills did and measured, in order
    seconds: float = 0.0

    def add(self, results: list[Finding]) -> None:
        self.results.extend(results)

    def finish(self) -> Report:
        self.seconds = time.time() - self.started
        return self

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def exit_status(self) -> ExitStatus:
        return {Status.FAIL: ExitStatus.LAB_WRONG, Status.UNREACHABLE: ExitStatus.UNREACHABLE}.get(
            worst(self.results), ExitStatus.OK)

    def dead_hosts(self) -> dict[tuple[str, str], list[Finding]]:
        """Unreachable findings by (phase, host label): a dead host is one problem, however many checks it had."""
        dead: dict[tuple[str, str], list[Finding]] = {}
        for r in self.results:
            if r.status is Status.UNREACHABLE:
                dead.setdefault((r.phase, r.host.label), []).append(r)
        return dead

    def students(self) -> list[str]:
        return list(self.by_student())

    def by_student(self) -> dict[str, list[Finding]]:
        """Each student's results, students in the order they first appear."""
        grouped: dict[str, list[Finding]] = {}
        for r in self.results:
            grouped.setdefault(r.host.student, []).append(r)
        return grouped

    def student_verdicts(self) -> list[tuple[str, int, int, Status]]:
        """(student, passed, total, worst status) per student, in order."""
        return [(student, sum(r.status is Status.PASS for r in mine), len(mine), worst(mine))
                for student, mine in self.by_student().items()]

    def class_summary(self) -> list[str]:
        verdicts = self.student_verdicts()
        lines = [f"  {student:<24} {passed:>3}/{total:<3} passed  "
                 f"{'all green' if worst is Status.PASS else worst.value.upper()}"
                 for student, passed, total, worst in verdicts]
        green = sum(worst is Status.PASS for *_, worst in verdicts)
        lines.append(f"  class: {green}/{len(verdicts)} students all green")
        return lines

    def summary(self) -> str:
        verdict = EXIT_MEANING[self.exit_status]
        return (f"{len(self.results)} checks: {self.count(Status.PASS)} passed, {self.count(Status.FAIL)} failed, "
                f"{self.count(Status.UNREACHABLE)} unreachable in {self.seconds:.1f} s -> exit "
                f"{int(self.exit_status)} ({verdict})")

    def to_dict(self) -> dict:
        return {
            "stack": self.stack, "mode": self.mode, "started": self.started, "seconds": round(self.seconds, 3),
            "exit_status": int(self.exit_status),
            "summary": {"passed": self.count(Status.PASS), "failed": self.count(Status.FAIL),
                        "unreachable": self.count(Status.UNREACHABLE)},
            "events": self.events,
            "students": [{"student": s, "passed": p, "total": t, "verdict": w.value}
                         for s, p, t, w in self.student_verdicts()],
            "results": [r.to_dict() for r in self.results],
        }

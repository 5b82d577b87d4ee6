"""Reports of a run: live progress and a final table for people, JSON and JUnit for machines.

The exit status is named (labs.errors.ExitStatus): 0 all passed; 1 the lab is wrong (an
expectation failed, or a host key did not match); 3 infrastructure did not answer. A
failed expectation wins over an unreachable host: the lab is wrong either way.
"""

from __future__ import annotations

import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TextIO

from labs.errors import ExitStatus
from labs.report import table
from labs.verify.runner import CheckResult, Status

MARKS = {Status.PASS: "ok  ", Status.FAIL: "FAIL", Status.UNREACHABLE: "UNRE"}
EXIT_MEANING = {ExitStatus.OK: "the lab matches the lesson", ExitStatus.LAB_WRONG: "the lab is wrong",
                ExitStatus.UNREACHABLE: "infrastructure did not answer"}


def worst(results: list[CheckResult]) -> Status | None:
    """A failed expectation wins over an unreachable host, as in the exit status; None if nothing ran."""
    statuses = {r.status for r in results}
    return next((s for s in (Status.FAIL, Status.UNREACHABLE, Status.PASS) if s in statuses), None)
COLOURS = {Status.PASS: "\033[32m", Status.FAIL: "\033[31m", Status.UNREACHABLE: "\033[33m"}


@dataclass
class Report:
    stack: str
    mode: str
    started: float = field(default_factory=time.time)
    results: list[CheckResult] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # what the drills did and measured, in order
    seconds: float = 0.0

    def add(self, results: list[CheckResult]) -> None:
        self.results.extend(results)

    def finish(self) -> "Report":
        self.seconds = time.time() - self.started
        return self

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def exit_status(self) -> ExitStatus:
        return {Status.FAIL: ExitStatus.LAB_WRONG, Status.UNREACHABLE: ExitStatus.UNREACHABLE}.get(
            worst(self.results), ExitStatus.OK)

    def students(self) -> list[str]:
        return list(self.by_student())

    def by_student(self) -> dict[str, list[CheckResult]]:
        """Each student's results, students in the order they first appear."""
        grouped: dict[str, list[CheckResult]] = {}
        for r in self.results:
            grouped.setdefault(r.check.host.student, []).append(r)
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


def progress_line(result: CheckResult, colour: bool = False) -> str:
    mark = MARKS[result.status]
    if colour:
        mark = f"{COLOURS[result.status]}{mark}\033[0m"
    took = f"{result.seconds:.2f}s" + (f" (settled after {result.attempts} tries)" if result.converged_after else "")
    return f"  {mark} {result.check.host.label:<24} {result.check.id:<24} {result.observed:<40} {took}"


class Progress:
    """Prints each result as it lands (stderr), so a person sees the run move."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream or sys.stderr  # looked up now: tests and pipes swap sys.stderr
        self.enabled = enabled
        self.colour = self.stream.isatty()

    def __call__(self, result: CheckResult) -> None:
        if self.enabled:
            print(progress_line(result, self.colour), file=self.stream, flush=True)

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)


def render_text(report: Report) -> str:
    rows = [[r.check.phase, r.check.host.label, r.check.id, r.check.expected, r.observed, r.status.value,
             f"{r.seconds:.2f}"] for r in report.results]
    parts = [table(rows, ["phase", "host", "check", "expected", "observed", "result", "s"])]
    if report.events:
        parts.append("\n".join(["", "What the drills did:"] + [f"  - {e}" for e in report.events]))
    failures = [r for r in report.results if r.status is not Status.PASS]
    if failures:
        parts.append("")
        parts.append("Failures:")
        for r in failures:
            parts.append(render_failure(r))
    parts.append("")
    parts.append("Per student:")
    parts.extend(report.class_summary())
    parts.append(report.summary())
    return "\n".join(parts)


def render_failure(r: CheckResult) -> str:
    lines = [f"{r.status.value.upper()} {r.check.host.label} ({r.check.host.instance_id}) {r.check.phase}:{r.check.id}",
             f"  command:  {r.check.command if len(r.check.command) < 160 else r.check.title}",
             f"  expected: {r.check.expected}",
             f"  observed: {r.observed}" + (f" (after {r.attempts} tries in {r.seconds:.1f} s)" if r.attempts > 1 else "")]
    if r.result and r.result.stderr.strip():
        lines.append(f"  stderr:   {r.result.stderr_tail()}")
    if r.note:
        lines.append(f"  detail:   {r.note}")
    if r.hint:
        lines.append(f"  hint:     {r.hint}")
    return "\n".join(lines)


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def _xml_safe(text: str) -> str:
    """XML 1.0 forbids most control characters (an ANSI colour in stderr would break the file)."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text)


def render_junit(report: Report) -> str:
    """JUnit XML: one testsuite per student, one testcase per check (CI shows the class as a tree)."""
    suites = ET.Element("testsuites", name=f"rolelab {report.stack}", tests=str(len(report.results)),
                        failures=str(report.count(Status.FAIL)), errors=str(report.count(Status.UNREACHABLE)),
                        time=f"{report.seconds:.3f}")
    for student, mine in report.by_student().items():
        suite = ET.SubElement(suites, "testsuite", name=f"rolelab.{report.stack}.{student}", tests=str(len(mine)),
                              failures=str(sum(r.status is Status.FAIL for r in mine)),
                              errors=str(sum(r.status is Status.UNREACHABLE for r in mine)),
                              skipped="0", time=f"{sum(r.seconds for r in mine):.3f}")
        for r in mine:
            case = ET.SubElement(suite, "testcase", classname=f"{student}.{r.check.host.name}",
                                 name=f"{r.check.phase}:{r.check.id}", time=f"{r.seconds:.3f}")
            if r.status is not Status.PASS:
                tag = "failure" if r.status is Status.FAIL else "error"
                node = ET.SubElement(case, tag, message=_xml_safe(f"expected {r.check.expected}, observed {r.observed}"),
                                     type=r.status.value)
                node.text = _xml_safe(render_failure(r))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"

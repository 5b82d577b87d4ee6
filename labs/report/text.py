"""The report for people: one table of findings, what the drills did, the failures with hints."""

from __future__ import annotations

from labs.lesson.findings import Finding, Status
from labs.report.console import cut
from labs.report.model import Report
from labs.report.safe import terminal_safe
from labs.report.tables import table

CELL = 48  # characters of a value in the table; the whole value is under Failures and in JSON


def render_text(report: Report) -> str:
    """Plain, stable text for logs and pipes: the table, what the drills did, failures, verdicts."""
    rows = [[terminal_safe(c) for c in (r.phase, r.host.label, r.check, cut(r.expected, CELL), cut(r.observed, CELL),
                                        r.status.value, f"{r.seconds:.2f}")] for r in report.results]
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
    return terminal_safe("\n".join(parts))  # hosts' stderr, notes and drill events too


def render_failure(r: Finding) -> str:
    lines = [f"{r.status.value.upper()} {r.host.label} ({r.host.instance_id}) {r.phase}:{r.check}",
             f"  command:  {r.command if len(r.command) < 160 else r.title}",
             f"  expected: {r.expected}",
             f"  observed: {r.observed}" + (f" (after {r.attempts} tries in {r.seconds:.1f} s)" if r.attempts > 1 else "")]
    if r.evidence and r.evidence.stderr.strip():
        lines.append(f"  stderr:   {r.evidence.stderr_tail()}")
    if r.note:
        lines.append(f"  detail:   {r.note}")
    if r.hint:
        lines.append(f"  hint:     {r.hint}")
    return "\n".join(lines)

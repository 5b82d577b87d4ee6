"""The class report page: one static, self-contained HTML file for an instructor.

Rendered by Jinja2 (autoescape on) from templates/class.html.j2: no scripts, no external
assets, <details> for what happened, so it reads the same from a mail attachment, a CI
artifact or a file:// URL. Students who need attention come first, each with a one-line
cause; a dead host is one entry, not one per check. Deterministic for a given report
(ids come from names, never from counters or randomness).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from itertools import groupby

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from labs.lesson.findings import Finding, Status
from labs.report.model import EXIT_MEANING, Report, worst

ORDER = {"fail": 0, "unreachable": 1, "pass": 2, "absent": 3}  # who comes first on the page
MARKS = {Status.PASS: "✓", Status.FAIL: "✗", Status.UNREACHABLE: "no SSH"}
LABELS = {"fail": "fail", "unreachable": "no SSH", "pass": "pass", "absent": "not run"}

_env = Environment(loader=PackageLoader("labs.report", "templates"), autoescape=select_autoescape(["j2", "html"]),
                   undefined=StrictUndefined, trim_blocks=False, keep_trailing_newline=True)


@dataclass
class Problem:
    """One thing that went wrong: a failed check, or a host that did not answer (all its checks at once)."""
    status: str
    student: str
    where: str  # student/host, and the drill step when not verify
    phase: str
    key: str  # host:check, or host:* for a dead host
    anchor: str
    what: str  # one line
    summary: str
    hint: str
    fields: list[dict] = field(default_factory=list)


def render_html(report: Report) -> str:
    """The whole page for one run of verify, drill or demo."""
    return _env.get_template("class.html.j2").render(**page(report))


def page(report: Report) -> dict:
    problems = find_problems(report)
    mine: dict[str, list[Problem]] = {}
    for p in problems:
        mine.setdefault(p.student, []).append(p)
    verdicts = {student: verdict(found) for student, found in report.by_student().items()}
    ranked = sorted(verdicts, key=lambda s: ORDER[verdicts[s]])  # stable: the class's order within a verdict
    green = sum(v == "pass" for v in verdicts.values())
    status = report.exit_status
    drills = _drills(report, {(p.phase, p.key, p.student): p.anchor for p in problems})
    return {
        "stack": report.stack, "mode": report.mode, "total": len(report.results),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.started)),
        "took": _duration(report.seconds),
        "tiles": [{"cls": cls, "value": value, "label": label} for cls, value, label in [
            ("pass", report.count(Status.PASS), "checks passed"), ("fail", report.count(Status.FAIL), "checks failed"),
            ("unreachable", report.count(Status.UNREACHABLE), "checks unreachable"),
            ("students", f"{green} / {len(verdicts)}", "students all green")]],
        "exit_status": int(status), "exit_meaning": EXIT_MEANING[status],
        "need": len(verdicts) - green, "students": len(verdicts),
        "attention": [p for student in ranked for p in mine.get(student, [])],
        **_grid(report, ranked, verdicts, mine),
        "problems": [p for student in ranked for p in mine.get(student, [])],
        "drills": drills, "events": report.events,
        "drills_failed": any(r["status"] != "pass" for d in drills for r in d["results"]),
        "drills_summary": _drills_summary(drills, report.events),
    }


# -- problems: what went wrong, once each ----------------------------------------------------------

def find_problems(report: Report) -> list[Problem]:
    problems: list[Problem] = []
    dead = report.dead_hosts()
    told: set[tuple[str, str]] = set()
    for r in report.results:
        where = r.host.label if r.phase == "verify" else f"{r.host.label} ({r.phase})"
        if r.status is Status.FAIL:
            problems.append(Problem(
                "fail", r.host.student, where, r.phase, f"{r.host.name}:{r.check}", anchor("p", r, r.check),
                f"{r.check}: expected {r.expected}, observed {_brief(r.observed, 120)}",
                f"{r.check}: expected {r.expected}, observed {_brief(r.observed, 120)}", r.hint, _fields(r)))
        elif r.status is Status.UNREACHABLE and (r.phase, r.host.label) not in told:
            told.add((r.phase, r.host.label))
            checks = dead[(r.phase, r.host.label)]
            what = (f"unreachable, {len(checks)} check(s) not run (no SSH after {r.attempts} attempt(s) "
                    f"in {r.seconds:.1f} s)")
            fields = _fields(r, command=False)
            fields.insert(1, {"name": "not run", "cls": "checks", "pre": False,
                              "value": ", ".join(c.check for c in checks)})
            problems.append(Problem("unreachable", r.host.student, where, r.phase, f"{r.host.name}:*",
                                    anchor("h", r, "host"), what, what, r.hint, fields))
    return problems


def _fields(r: Finding, command: bool = True) -> list[dict]:
    def item(name: str, value: str, pre: bool = False) -> dict:
        return {"name": name, "cls": name.replace(" ", "-"), "value": value, "pre": pre}

    tries = f"{r.attempts} {'try' if r.attempts == 1 else 'tries'} in {r.seconds:.2f} s"
    fields = [item("host", f"{r.host.label} ({r.host.instance_id})")]
    if command:  # what a person would type, not the script the check runs
        fields += [item("command", r.title, pre=True), item("expected", r.expected), item("observed", r.observed)]
    fields.append(item("attempts", tries))
    if r.evidence is not None:
        fields.append(item("exit code", str(r.evidence.rc)))
        if r.evidence.stderr.strip():
            fields.append(item("stderr", r.evidence.stderr_tail(), pre=True))
    fields += [item(name, value) for name, value in (("note", r.note), ("hint", r.hint)) if value]
    return fields


# -- the students x checks grid -----------------------------------------------------------------------

def _grid(report: Report, ranked: list[str], verdicts: dict[str, str], mine: dict[str, list[Problem]]) -> dict:
    results = [r for r in report.results if r.phase == "verify"]
    if not results:
        return {"hosts": [], "columns": [], "rows": []}
    columns = list(dict.fromkeys((r.host.name, r.check) for r in results))
    cells: dict[tuple[str, str, str], Finding] = {}
    for r in results:
        key = (r.host.student, r.host.name, r.check)
        if key not in cells or cells[key].status is Status.PASS:  # a repeated check: keep the first bad one
            cells[key] = r
    links: dict[tuple[str, str], str] = {}
    for problems in mine.values():
        links.update({(p.student, p.key): p.anchor for p in problems if p.phase == "verify"})
    rows = []
    for student in ranked:
        row_cells = [_cell(cells.get((student, h, c)), f"{h}:{c}", links) for h, c in columns]
        first = (mine.get(student) or [None])[0]
        if all(cell["status"] == "absent" for cell in row_cells):
            continue  # a student only drilled, never verified: the drills section has them
        rows.append({"student": student, "anchor": f"row-{_slug(student)}", "verdict": verdicts[student],
                     "label": LABELS[verdicts[student]], "cells": row_cells,
                     "cause": first and {"where": first.where, "what": first.what, "hint": first.hint}})
    hosts = [{"name": host, "span": len(list(group))} for host, group in groupby(columns, key=lambda c: c[0])]
    return {"hosts": hosts, "columns": [{"key": f"{h}:{c}", "check": c} for h, c in columns], "rows": rows}


def _cell(r: Finding | None, key: str, links: dict[tuple[str, str], str]) -> dict:
    if r is None:
        return {"status": "absent", "key": key}
    host_key = f"{r.host.name}:*" if r.status is Status.UNREACHABLE else key
    mark = MARKS[r.status] + (f" {r.observed}" if r.status is Status.FAIL else "")
    took = f"{r.seconds:.2f} s" + (f", {r.attempts} tries" if r.attempts > 1 else "")
    return {"status": r.status.value, "key": key, "mark": mark, "title": f"{r.title}: {r.observed} ({took})",
            "link": links.get((r.host.student, host_key))}


# -- drills ------------------------------------------------------------------------------------------

def _drills(report: Report, links: dict[tuple[str, str, str], str]) -> list[dict]:
    phases: dict[str, list[dict]] = {}
    for r in report.results:
        if r.phase == "verify":
            continue
        key = f"{r.host.name}:*" if r.status is Status.UNREACHABLE else f"{r.host.name}:{r.check}"
        phases.setdefault(r.phase, []).append({
            "status": r.status.value, "student": r.host.student, "host": r.host.label, "check": r.check,
            "title": r.title, "expected": r.expected, "observed": r.observed, "seconds": f"{r.seconds:.2f}",
            "link": links.get((r.phase, key, r.host.student))})
    return [{"name": name, "results": results} for name, results in phases.items()]


def _drills_summary(drills: list[dict], events: list[str]) -> str:
    results = [r for d in drills for r in d["results"]]
    bad = sum(r["status"] != "pass" for r in results)
    return (f"{len(drills)} drill step(s), {len(results)} check(s): "
            + (f"{bad} did not pass" if bad else "all passed") + f"; {len(events)} action(s)")


# -- small helpers -------------------------------------------------------------------------------------

def verdict(results: list[Finding]) -> str:
    """A student's verdict for the page: report.worst, or "absent" when nothing ran."""
    status = worst(results)
    return status.value if status else "absent"


def anchor(prefix: str, r: Finding, what: str) -> str:
    return f"{prefix}-" + _slug(f"{r.host.student}--{r.host.name}--{what}--{r.phase}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def _brief(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1] + "…"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{seconds:.1f} s" if minutes < 1 else f"{int(minutes)} min {rest:04.1f} s"

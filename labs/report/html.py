"""The class report page: one static, self-contained HTML file for an instructor.

No scripts, no external assets: inline CSS, <details> for drill-downs, so it reads the
same from a mail attachment, a CI artifact or a file:// URL. Deterministic for a given
report (ids come from names, never from counters or randomness).
"""

from __future__ import annotations

import re
import time
from html import escape
from itertools import groupby

from labs.lesson.findings import Finding, Status
from labs.report.model import EXIT_MEANING, Report, worst

BRIEF = 40  # characters of an observation shown in a grid cell; the rest is in its title and details

CSS = """
:root { --pass:#2b8a3e; --pass-bg:#e6f4ea; --fail:#c92a2a; --fail-bg:#ffe3e3; --unre:#b35c00; --unre-bg:#fff3d6;
        --absent:#868e96; --absent-bg:#f1f3f5; --line:#dee2e6; --ink:#212529; --muted:#5c636a; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; } h3 { font-size: 15px; margin: 20px 0 6px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 16px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 120px; }
.tile b { display: block; font-size: 22px; }
.tile.pass b { color: var(--pass); } .tile.fail b { color: var(--fail); } .tile.unreachable b { color: var(--unre); }
.exit { display: inline-block; padding: 6px 12px; border-radius: 6px; font-weight: 600; color: #fff; }
.exit.s0 { background: var(--pass); } .exit.s1 { background: var(--fail); } .exit.s3 { background: var(--unre); }
.attention a { color: var(--fail); }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border-radius: 4px; }
.scroll { display: inline-block; max-width: 100%; overflow-x: auto; vertical-align: top; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: 4px 6px; vertical-align: top; text-align: left; }
thead th { background: #f8f9fa; font-weight: 600; }
thead th.host { text-align: center; }
thead th.check { font-size: 12px; font-weight: 500; max-width: 9em; }
table.grid th.student { position: sticky; left: 0; background: #fff; white-space: nowrap; z-index: 1; }
tr[data-verdict="fail"] { background: var(--fail-bg); }
tr[data-verdict="fail"] th.student { background: var(--fail); color: #fff; }
tr[data-verdict="fail"] > * { border-top: 2px solid var(--fail); border-bottom: 2px solid var(--fail); }
tr[data-verdict="unreachable"] th.student { background: var(--unre-bg); }
.verdict { display: block; font-size: 11px; font-weight: 500; text-transform: uppercase; letter-spacing: .04em; }
td.cell { min-width: 7em; font-size: 12px; }
.obs { display: block; max-width: 13em; overflow-wrap: break-word; }
details.failure summary { max-width: 13em; overflow-wrap: break-word; }
.cell.pass { background: var(--pass-bg); color: #1b5e2b; }
.cell.fail { background: #ffc9c9; color: #861b1b; font-weight: 500; }
.cell.unreachable { background: var(--unre-bg); color: #7a4100; }
.cell.absent { background: var(--absent-bg); color: var(--absent); }
td.cell.absent { text-align: center; }
td.cell:target { outline: 3px solid var(--ink); outline-offset: -3px; }
.secs { display: block; color: var(--muted); font-size: 11px; font-weight: 400; }
details.failure summary { cursor: pointer; }
details.failure[open] { width: 28em; }
details.failure dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 6px 0;
                     padding: 8px; background: #fff; color: var(--ink); border: 1px solid var(--line);
                     border-radius: 6px; font-weight: 400; }
details.failure dt { color: var(--muted); } details.failure dd { margin: 0; }
details.failure pre { margin: 0; white-space: pre-wrap; max-height: 12em; overflow: auto; }
table.drill td.status { font-weight: 600; }
table.drill tr.pass td.status { color: var(--pass); } table.drill tr.fail { background: var(--fail-bg); }
table.drill tr.fail td.status { color: var(--fail); } table.drill tr.unreachable td.status { color: var(--unre); }
ol.events li { margin: 2px 0; }
"""


def render_html(report: Report) -> str:
    """The whole page for one run of verify, drill or demo."""
    stack = escape(report.stack)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rolelab class report: {stack}</title>",
        f"<style>{CSS}</style></head><body>",
        _header(report),
        _grid(report),
        _drills(report),
        "</body></html>",
        "",
    ])


# -- header -------------------------------------------------------------------------------

def _header(report: Report) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.started))
    status = report.exit_status
    verdicts = [verdict(mine) for mine in report.by_student().values()]
    green = verdicts.count("pass")
    tiles = "".join(f'<div class="tile {cls}"><b>{n}</b>{escape(label)}</div>' for cls, n, label in [
        ("pass", report.count(Status.PASS), "checks passed"),
        ("fail", report.count(Status.FAIL), "checks failed"),
        ("unreachable", report.count(Status.UNREACHABLE), "checks unreachable"),
        ("students", f"{green} / {len(verdicts)}", "students all green"),
    ])
    return (f'<header><h1>Class report: IAM Roles for EC2</h1>'
            f'<p class="meta">stack <b>{escape(report.stack)}</b> · mode <b>{escape(report.mode)}</b> · '
            f'run at <b>{started}</b> · took <b>{_duration(report.seconds)}</b></p>'
            f'<div class="tiles" data-total="{len(report.results)}">{tiles}</div>'
            f'<p><span class="exit s{int(status)}" data-exit="{int(status)}">exit {int(status)}: '
            f'{escape(EXIT_MEANING[status])}</span> &nbsp; {len(verdicts) - green} of {len(verdicts)} students '
            f'need attention (verify and drills).</p>'
            f'{_attention(report)}</header>')


def _attention(report: Report) -> str:
    """Links from the top of the page to every red or amber cell of the grid."""
    links = [f'<a href="#{_cell_id(r)}">{escape(r.host.label)} · {escape(r.check)}</a>'
             for r in report.results if r.phase == "verify" and r.status is not Status.PASS]
    return f'<p class="attention">Needs attention: {" · ".join(links)}</p>' if links else ""


# -- the students x checks grid ------------------------------------------------------------

def _grid(report: Report) -> str:
    results = [r for r in report.results if r.phase == "verify"]
    if not results:
        return '<section id="grid"><h2>Students × checks</h2><p>No verify results in this run.</p></section>'
    columns = list(dict.fromkeys((r.host.name, r.check) for r in results))
    cells: dict[tuple[str, str, str], Finding] = {}
    for r in results:
        key = (r.host.student, r.host.name, r.check)
        if key not in cells or cells[key].status is Status.PASS:  # a repeated check: keep the first bad one
            cells[key] = r
    hosts = "".join(f'<th class="host" colspan="{len(list(group))}">{escape(host)}</th>'
                    for host, group in groupby(columns, key=lambda c: c[0]))
    checks = "".join(f'<th class="check" data-check="{escape(f"{h}:{c}")}" title="{escape(f"{h} · {c}")}">'
                     f'{escape(c)}</th>' for h, c in columns)
    rows = "".join(_row(student, [cells.get((student, h, c)) for h, c in columns], columns)
                   for student in report.students())
    legend = ('<p class="legend"><span class="cell pass">pass</span><span class="cell fail">fail</span>'
              '<span class="cell unreachable">unreachable</span><span class="cell absent">— not run</span>'
              'Click a red or amber cell for the command, the expectation and what the host said.</p>')
    return (f'<section id="grid"><h2>Students × checks</h2>{legend}'
            f'<div class="scroll"><table class="grid"><thead><tr><th class="student" rowspan="2">student</th>'
            f'{hosts}</tr><tr>{checks}</tr></thead><tbody>{rows}</tbody></table></div></section>')


def _row(student: str, results: list[Finding | None], columns: list[tuple[str, str]]) -> str:
    mine = verdict([r for r in results if r is not None])
    cells = "".join(_cell(student, f"{h}:{c}", r) for (h, c), r in zip(columns, results))
    return (f'<tr data-student="{escape(student)}" data-verdict="{mine}"><th class="student">{escape(student)}'
            f'<span class="verdict">{mine}</span></th>{cells}</tr>')


def _cell(student: str, column: str, r: Finding | None) -> str:
    marker = f'data-student="{escape(student)}" data-check="{escape(column)}"'
    if r is None:
        return f'<td class="cell absent" data-status="absent" {marker} title="not run for this student">—</td>'
    status = r.status.value
    took = f'<span class="secs">{_took(r)}</span>'
    if r.status is Status.PASS:
        body = f'<span class="obs">{escape(_brief(r.observed))}</span>{took}'
    else:
        body = f'{_failure(r)}{took}'
    return (f'<td id="{_cell_id(r)}" class="cell {status}" data-status="{status}" {marker} '
            f'title="{escape(r.title)}: {escape(r.observed)}">{body}</td>')


# -- one failure, one click away ------------------------------------------------------------

def _failure(r: Finding) -> str:
    tries = f"{r.attempts} {'try' if r.attempts == 1 else 'tries'} in {r.seconds:.2f} s"
    fields = [("host", escape(f"{r.host.label} ({r.host.instance_id})")), ("phase", escape(r.phase)),
              ("command", _pre(r.command)), ("expected", escape(r.expected)),
              ("observed", escape(r.observed)), ("attempts", tries)]
    if r.evidence is not None:
        fields.append(("exit code", str(r.evidence.rc)))
        if r.evidence.stderr.strip():
            fields.append(("stderr", _pre(r.evidence.stderr_tail())))
    fields += [(name, escape(value)) for name, value in (("note", r.note), ("hint", r.hint)) if value]
    rows = "".join(f'<dt>{name}</dt><dd class="{name.replace(" ", "-")}">{value}</dd>' for name, value in fields)
    return (f'<details class="failure" data-student="{escape(r.host.student)}" '
            f'data-check="{escape(f"{r.host.name}:{r.check}")}" data-phase="{escape(r.phase)}">'
            f'<summary>expected {escape(r.expected)}, observed {escape(r.observed)}</summary>'
            f'<dl>{rows}</dl></details>')


# -- drills -----------------------------------------------------------------------------------

def _drills(report: Report) -> str:
    phases: dict[str, list[Finding]] = {}
    for r in report.results:
        if r.phase != "verify":
            phases.setdefault(r.phase, []).append(r)
    if not phases and not report.events:
        return ""
    tables = "".join(_phase_table(phase, results) for phase, results in phases.items())
    events = "".join(f"<li>{escape(e)}</li>" for e in report.events)
    told = f'<h3>What the drills did</h3><ol class="events">{events}</ol>' if events else ""
    return f'<section id="drills"><h2>Drills</h2>{tables}{told}</section>'


def _phase_table(phase: str, results: list[Finding]) -> str:
    rows = "".join(
        f'<tr class="{r.status.value}" data-status="{r.status.value}" data-student="{escape(r.host.student)}">'
        f'<td>{escape(r.host.label)}</td><td title="{escape(r.title)}">{escape(r.check)}</td>'
        f'<td>{escape(r.expected)}</td>'
        f'<td>{escape(r.observed) if r.status is Status.PASS else _failure(r)}</td>'
        f'<td class="status">{r.status.value}</td><td class="mono">{r.seconds:.2f}</td></tr>'
        for r in results)
    return (f'<h3>{escape(phase)}</h3><div class="scroll"><table class="drill" data-phase="{escape(phase)}">'
            f'<thead><tr><th>host</th><th>check</th><th>expected</th><th>observed</th><th>status</th><th>s</th>'
            f'</tr></thead><tbody>{rows}</tbody></table></div>')


# -- small helpers -----------------------------------------------------------------------------

def verdict(results: list[Finding]) -> str:
    """A student's verdict for the page: report.worst, or "absent" when nothing ran."""
    status = worst(results)
    return status.value if status else "absent"


def _cell_id(r: Finding) -> str:
    return "cell-" + re.sub(r"[^A-Za-z0-9_-]", "-", f"{r.host.student}--{r.host.name}--{r.check}")


def _brief(text: str) -> str:
    return text if len(text) <= BRIEF else text[:BRIEF - 1] + "…"


def _took(r: Finding) -> str:
    return f"{r.seconds:.2f} s" + (f" · {r.attempts} tries" if r.attempts > 1 else "")


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{seconds:.1f} s" if minutes < 1 else f"{int(minutes)} min {rest:04.1f} s"

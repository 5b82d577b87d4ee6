"""The report at a terminal: what went wrong, each with its hint, then a short summary, last.

By default a person reads one line per failure (a dead host is one line, not one per check)
and the summary; `-v` adds every check as a table that fits the terminal. Long values are
cut with an ellipsis here and shown whole with -v, in the piped text and in JSON.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from labs.lesson.findings import Finding, Status
from labs.report.console import STYLES, cut
from labs.report.model import Report


def print_terminal(report: Report, console: Console, verbose: bool = False, events_told: bool = True) -> None:
    """events_told: the drills' notes were already shown live (on stderr), so they are not repeated."""
    if verbose:
        console.print(checks_table(report, console.width))
        if report.events and not events_told:
            console.print("\nWhat the drills did:")
            for event in report.events:
                console.print(f"  - {event}", markup=False)
    problems = problem_lines(report)
    if problems:
        console.print()
    for headline, hint in problems:
        console.print(headline, overflow="ellipsis", no_wrap=True)
        if hint:
            console.print(Text(f"    hint: {hint}", style="dim"))
    if verbose:
        for r in report.results:
            if r.status is not Status.PASS:
                console.print(Text(whole(r)))
    console.print()
    for line in summary_lines(report):
        console.print(line)


def problem_lines(report: Report) -> list[tuple[Text, str]]:
    """One (headline, hint) per failed check, and one per unreachable host (whatever its checks)."""
    lines: list[tuple[Text, str]] = []
    dead = report.dead_hosts()
    told: set[tuple[str, str]] = set()
    for r in report.results:
        if r.status is Status.FAIL:
            where = r.host.label if r.phase == "verify" else f"{r.host.label} {r.phase}"
            lines.append((_headline(r.status, f"{where} {r.check}: expected {r.expected}, observed "
                                    f"{cut(r.observed, 200)}"), r.hint))
        elif r.status is Status.UNREACHABLE and (r.phase, r.host.label) not in told:
            told.add((r.phase, r.host.label))
            mine = dead[(r.phase, r.host.label)]
            lines.append((_headline(r.status, f"{r.host.label}: {len(mine)} check(s) not run, no SSH after "
                                    f"{r.attempts} attempt(s) in {r.seconds:.1f} s"), r.hint))
    return lines


def _headline(status: Status, text: str) -> Text:
    line = Text()
    line.append(status.value.upper(), style=STYLES[status])
    line.append(f" {text}")
    return line


def summary_lines(report: Report) -> list[Text]:
    """Short: the students who are not all green (a class), then the one-line verdict."""
    lines: list[Text] = []
    verdicts = report.student_verdicts()
    if len(verdicts) > 1:
        red = [f"{s} ({w.value})" for s, _, _, w in verdicts if w is not Status.PASS]
        green = len(verdicts) - len(red)
        lines.append(Text(f"class: {green}/{len(verdicts)} students all green"
                          + (f"; needs attention: {', '.join(red)}" if red else "")))
    status = {0: Status.PASS, 1: Status.FAIL, 3: Status.UNREACHABLE}[int(report.exit_status)]
    lines.append(Text(report.summary(), style=STYLES[status]))
    return lines


def checks_table(report: Report, width: int) -> Table:
    """Every check, in a table as wide as the terminal (-v: long values wrap, never cut)."""
    table = Table(box=None, pad_edge=False, width=min(width, 200), show_edge=False, header_style="bold")
    phases = len({r.phase for r in report.results}) > 1 or any(r.phase != "verify" for r in report.results)
    names = (["phase"] if phases else []) + ["host", "check"]
    for name in names:  # short, and what a person scans for: never wrapped
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    table.add_column("expected", ratio=1, overflow="fold")
    table.add_column("observed", ratio=1, overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    for r in report.results:
        table.add_row(*([r.phase] if phases else []), r.host.label, r.check, r.expected, r.observed,
                      Text(r.status.value, style=STYLES[r.status]), f"{r.seconds:.2f}")
    return table


def whole(r: Finding) -> str:
    from labs.report.text import render_failure

    return render_failure(r)

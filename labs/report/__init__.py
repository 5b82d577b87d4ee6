"""Renderers of a report: one registry, so every command writes every format the same way.

Text goes to people, JSON and JUnit to machines, HTML to an instructor's browser.
"""

from __future__ import annotations

from collections.abc import Callable

from labs.report.model import Report


def _html(report: Report) -> str:
    from labs.report.html import render_html  # only runs that ask for the page pay for it

    return render_html(report)


def _text(report: Report) -> str:
    from labs.report.text import render_text

    return render_text(report)


def _json(report: Report) -> str:
    from labs.report.machine import render_json

    return render_json(report)


def _junit(report: Report) -> str:
    from labs.report.machine import render_junit

    return render_junit(report)


RENDERERS: dict[str, Callable[[Report], str]] = {"text": _text, "json": _json, "junit": _junit, "html": _html}


def render(kind: str, report: Report) -> str:
    return RENDERERS[kind](report)

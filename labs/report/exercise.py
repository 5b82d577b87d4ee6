"""`rolelab check`'s views: lines for a terminal, JSON for an LMS, a progress grid for the class page.

Takes any sequence of graded students (objects with .student, .steps, .done, .to_dict()).
"""

from __future__ import annotations

import json
import time

from labs.lesson.exercise import DONE, STEPS, TODO, WRONG

MARKS = {DONE: "done", TODO: "todo", WRONG: "WRONG"}


def render_text(graded, stack: str) -> str:
    lines = []
    for progress in graded:
        lines.append(f"{progress.student}: {progress.done}/{len(STEPS)} steps done (stack {stack})")
        for step in progress.steps:
            lines.append(f"  [{MARKS[step.status]}] {step.id:<20} {step.observed}")
            if step.status != DONE and step.hint:
                lines.append(f"         next: {step.hint}")
    finished = sum(p.done == len(STEPS) for p in graded)
    lines.append(f"class: {finished}/{len(graded)} students done" if len(graded) > 1 else "")
    return "\n".join(line for line in lines if line)


def render_json(graded) -> str:
    data = [p.to_dict() for p in graded]
    return json.dumps(data if len(data) != 1 else data[0], indent=2)


def render_html(graded, stack: str, refresh: float | None = None) -> str:
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("labs.report", "templates"),
                                     autoescape=jinja2.select_autoescape(["html"]))
    ordered = sorted(graded, key=lambda p: (p.done == len(STEPS), p.done))  # who needs help first
    return environment.get_template("progress.html").render(
        stack=stack, steps=STEPS, students=ordered, total=len(STEPS), refresh=refresh,
        finished=sum(p.done == len(STEPS) for p in graded),
        at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))

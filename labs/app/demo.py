"""`rolelab demo`: the whole lesson on an offline lab cloud: up, verify, drills, report, down.

It brings up its own stack and always takes it down again, even after a failure or
Ctrl-C, so it leaves nothing running. Its exit status is the report's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from labs.app.sequence import LabRun
from labs.app.walkthrough import Walkthrough, enter_to_continue
from labs.core.errors import UsageError
from labs.core.outputs import LabOutputs
from labs.labcloud.paths import StackPaths
from labs.lesson.drills import DRILLS
from labs.lesson.findings import Finding
from labs.provision import local
from labs.provision.operator import operator_clients
from labs.report.model import Report
from labs.report.progress import Progress

DEMO_STACK = "demo"


@dataclass
class DemoTimings:
    up: float = 0.0
    verify: float = 0.0
    drills: float = 0.0
    down: float = 0.0


def excerpt(result: Finding, width: int = 110) -> str:
    """The real output a student would see, shortened to one line."""
    if result.evidence is None:
        return result.observed
    if result.evidence.rc != 0:
        text = result.evidence.stderr.strip().splitlines()[-1] if result.evidence.stderr.strip() else ""
        return f"{text[:width]}  (exit {result.evidence.rc})"
    try:
        users = json.loads(result.evidence.stdout).get("Users", [])
        names = ", ".join(u["UserName"] for u in users)
        return f'{{"Users": [...]}}  ({len(users)} users: {names})'[:width]
    except (ValueError, AttributeError):
        return result.evidence.stdout.strip()[:width]


def show_lesson(progress: Progress, results: list[Finding]) -> None:
    progress.say("\nThe lesson, as the hosts answered it:")
    for r in results:
        if r.check == "iam-list-users":
            progress.say(f"  {r.host.label:<22} $ aws iam list-users\n  {'':<22}   {excerpt(r)}")


def run_demo(values: Mapping[str, str], stack: str = DEMO_STACK, region: str = "us-east-1",
             progress: Progress | None = None, drills: tuple[str, ...] = tuple(DRILLS),
             settle: float | None = None, step: bool = False, students: tuple[str, ...] | None = None
             ) -> tuple[Report, LabOutputs | None, DemoTimings]:
    progress = progress or Progress()
    if StackPaths.for_stack(stack).root.exists():
        raise UsageError(f"stack {stack!r} already exists; the demo brings up its own: "
                         f"run `rolelab local down --stack {stack}` or pass --stack NAME")
    local.validate(values, stack, region)  # before the lock file: a bad config leaves nothing behind
    with local.lock(stack, "running the demo"):
        return _run_demo(values, stack, region, progress, drills, settle, step, students)


def _run_demo(values: Mapping[str, str], stack: str, region: str, progress: Progress, drills: tuple[str, ...],
              settle: float | None, step: bool, students: tuple[str, ...] | None
              ) -> tuple[Report, LabOutputs | None, DemoTimings]:
    timings = DemoTimings()
    report = Report(stack, "local")
    outputs = None
    clock = time.monotonic()
    try:
        progress.say(f"== 1. Provisioning the lab offline (stack {stack!r}): the Pulumi program on a local lab cloud")
        up = local.up(values, stack=stack, region=region)
        outputs = up.outputs
        timings.up = time.monotonic() - clock
        progress.say(f"   {len(outputs.hosts)} hosts ready in {up.seconds:.1f} s")
        unknown = [s for s in students or () if s not in outputs.students()]
        if unknown:
            raise UsageError(f"--student {unknown[0]!r}: no such student in the demo's class "
                             f"(students: {', '.join(outputs.students())})")
        with LabRun.open(outputs, operator_clients(outputs), progress, settle=settle, live=not step) as run:
            if step:
                clock = time.monotonic()
                Walkthrough(run, pause=enter_to_continue()).narrate(students or outputs.students())
                timings.verify = time.monotonic() - clock
            else:
                progress.say("\n== 2. Before and after: every host, every check of the lesson")
                clock = time.monotonic()
                show_lesson(progress, run.verify(students))
                timings.verify = time.monotonic() - clock
                clock = time.monotonic()
                run.drill(drills, students, heading=lambda n, name, what: f"\n== {n + 2}. Drill {name}: {what}")
                timings.drills = time.monotonic() - clock
            report = run.report
    finally:
        clock = time.monotonic()
        summary = local.down(stack)
        timings.down = time.monotonic() - clock
        progress.say(f"\n== Cleaned up: {summary.describe()}")
    return report.finish(), outputs, timings

"""`rolelab demo`: the whole lesson on an offline lab cloud: up, verify, drills, report, down.

It brings up its own stack and always takes it down again, even after a failure or
Ctrl-C, so it leaves nothing running. Its exit status is the report's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Mapping

from labs.cloud import local
from labs.cloud.paths import StackPaths
from labs.drills import all_drills, run_drills
from labs.errors import UsageError
from labs.operator import operator_clients
from labs.outputs import LabOutputs
from labs.verify.report import Progress, Report
from labs.verify.runner import CheckResult, Verifier
from labs.verify.suite import lab_checks
from labs.walkthrough import Walkthrough, enter_to_continue

DEMO_STACK = "demo"


@dataclass
class DemoTimings:
    up: float = 0.0
    verify: float = 0.0
    drills: float = 0.0
    down: float = 0.0


def excerpt(result: CheckResult, width: int = 110) -> str:
    """The real output a student would see, shortened to one line."""
    if result.result is None:
        return result.observed
    if result.result.rc != 0:
        text = result.result.stderr.strip().splitlines()[-1] if result.result.stderr.strip() else ""
        return f"{text[:width]}  (exit {result.result.rc})"
    try:
        users = json.loads(result.result.stdout).get("Users", [])
        names = ", ".join(u["UserName"] for u in users)
        return f'{{"Users": [...]}}  ({len(users)} users: {names})'[:width]
    except (ValueError, AttributeError):
        return result.result.stdout.strip()[:width]


def show_lesson(progress: Progress, results: list[CheckResult]) -> None:
    progress.say("\nThe lesson, as the hosts answered it:")
    for r in results:
        if r.check.id == "iam-list-users":
            progress.say(f"  {r.check.host.label:<22} $ aws iam list-users\n  {'':<22}   {excerpt(r)}")


def run_demo(values: Mapping[str, str], stack: str = DEMO_STACK, region: str = "us-east-1",
             progress: Progress | None = None, drills: tuple[str, ...] = tuple(all_drills()),
             settle: float | None = None, step: bool = False) -> tuple[Report, LabOutputs | None, DemoTimings]:
    progress = progress or Progress()
    if StackPaths.for_stack(stack).root.exists():
        raise UsageError(f"stack {stack!r} already exists; the demo brings up its own: "
                         f"run `rolelab local down --stack {stack}` or pass --stack NAME")
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
        operator = operator_clients(outputs)
        if step:
            with Verifier(outputs, settle=settle, operator=operator) as verifier:
                walk = Walkthrough(outputs, verifier, operator, outputs.students()[0], pause=enter_to_continue(),
                                   settle=verifier.settle)
                report.add(walk.run())
            return report.finish(), outputs, timings
        with Verifier(outputs, settle=settle, operator=operator, on_result=progress) as verifier:
            progress.say("\n== 2. Before and after: every host, every check of the lesson")
            clock = time.monotonic()
            results = verifier.run(lab_checks(outputs))
            report.add(results)
            timings.verify = time.monotonic() - clock
            show_lesson(progress, results)
            clock = time.monotonic()
            run_drills(drills, outputs, verifier, operator, progress, report,
                       heading=lambda n, name, what: f"\n== {n + 2}. Drill {name}: {what}")
            timings.drills = time.monotonic() - clock
    finally:
        clock = time.monotonic()
        summary = local.down(stack)
        timings.down = time.monotonic() - clock
        progress.say(f"\n== Cleaned up: {summary.describe()}")
    return report.finish(), outputs, timings

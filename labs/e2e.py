"""`rolelab e2e --stack S`: course CI on AWS, Terratest-style.

pulumi up, then verify and every drill, then pulumi destroy, always: after a failure,
after Ctrl-C (a second Ctrl-C during destroy is ignored, with a word why), and even when
up itself failed half-way. A destroy that fails is loud: resources may remain.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

from labs import pulumi_cli
from labs.drills import DRILLS, run_drills
from labs.errors import ExitStatus, RolelabError
from labs.operator import operator_clients
from labs.verify.report import Progress, Report
from labs.verify.runner import Verifier
from labs.verify.suite import lab_checks

UP_TIMEOUT = 30 * 60
DESTROY_TIMEOUT = 30 * 60


@dataclass
class E2eResult:
    report: Report | None
    status: ExitStatus
    steps: list[str] = field(default_factory=list)
    destroy_error: str = ""


def run_e2e(stack: str, identity: str | None, progress: Progress, settle: float | None = None,
            connect_budget: float | None = None) -> E2eResult:
    pulumi_cli.pulumi_binary()  # no CLI: say so before anything exists that would need destroying
    steps: list[str] = []
    report: Report | None = None
    status = ExitStatus.OK
    started = time.monotonic()
    try:
        progress.say(f"== pulumi up --stack {stack}")
        pulumi_cli.run(["up", "--yes", "--skip-preview"], stack, timeout=UP_TIMEOUT)
        steps.append(f"up in {time.monotonic() - started:.0f} s")
        outputs = pulumi_cli.stack_outputs(stack)
        report = Report(outputs.stack, outputs.mode)
        operator = operator_clients(outputs)
        with Verifier(outputs, identity=identity, settle=settle, connect_budget=connect_budget,
                      operator=operator, on_result=progress) as verifier:
            progress.say("== verify")
            report.add(verifier.run(lab_checks(outputs)))
            run_drills(tuple(DRILLS), outputs, verifier, operator, progress, report,
                       heading=lambda n, name, what: f"== drill {name}: {what}")
        report.finish()
        status = report.exit_status
        steps.append(f"verify and drills: {report.summary()}")
    except RolelabError as error:
        status = error.exit_status
        steps.append(f"stopped: {error}")
    except KeyboardInterrupt:
        status = ExitStatus.INTERRUPTED
        steps.append("interrupted (Ctrl-C)")
    finally:
        destroy_error = _destroy_always(stack, progress)
    if destroy_error:
        steps.append(destroy_error)
        status = ExitStatus.UNREACHABLE if status is ExitStatus.OK else status
    else:
        steps.append("destroyed")
    return E2eResult(report, status, steps, destroy_error)


def _destroy_always(stack: str, progress: Progress) -> str:
    progress.say(f"== pulumi destroy --stack {stack} (always)")
    previous = signal.signal(signal.SIGINT, lambda *_: progress.say(
        "   destroy is running and will finish; interrupting it now would leave resources behind"))
    try:
        pulumi_cli.run(["destroy", "--yes", "--skip-preview"], stack, timeout=DESTROY_TIMEOUT)
        return ""
    except RolelabError as error:
        return (f"DESTROY FAILED ({error}); resources may remain: run `pulumi destroy --stack {stack}` "
                f"or `rolelab sweep --region REGION`")
    finally:
        signal.signal(signal.SIGINT, previous)

"""`rolelab e2e --stack S`: course CI on AWS, Terratest-style.

pulumi up, then verify and every drill, then pulumi destroy, always: after a failure,
after Ctrl-C (a second Ctrl-C during destroy is ignored, with a word why), and even when
up itself failed half-way. A destroy that fails is loud: resources may remain.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

from labs.app.sequence import LabRun
from labs.core.errors import ExitStatus, RolelabError
from labs.lesson.drills import DRILLS
from labs.provision import pulumi_cli
from labs.provision.operator import operator_clients
from labs.report.model import Report
from labs.report.progress import Progress

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
        with LabRun.open(outputs, operator_clients(outputs), progress, identity=identity, settle=settle,
                         connect_budget=connect_budget) as run:
            progress.say("== verify")
            run.verify()
            # the lesson's drills; the anti-pattern puts a real key on an instance and is left to people
            run.drill(tuple(n for n, d in DRILLS.items() if not d.real_key),
                      heading=lambda n, name, what: f"== drill {name}: {what}")
        report = run.finish()
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

"""`rolelab e2e --stack S`: course CI on AWS, Terratest-style.

preflight, pulumi up, then verify and every drill, then pulumi destroy, always: after a
failure, after Ctrl-C, and even when up itself failed half-way. pulumi runs in its own
session: a Ctrl-C reaches rolelab, which asks pulumi to cancel (one SIGINT) and waits, so the
stack is not left locked. Destroy is shielded from further Ctrl-C; if it fails, the lock is
cleared (`pulumi cancel --yes`) and destroy is tried once more. Last, the account is swept
(dry run) for the stack's tags and what is left is printed, resource by resource.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from labs.app import preflight as lab_preflight
from labs.app.sequence import LabRun
from labs.app.sweep import find_lab_resources
from labs.core.clients import Clients, DefaultChainClients
from labs.core.errors import ExitStatus, RolelabError
from labs.lesson.drills import DRILLS
from labs.program.config import DEFAULT_REGION
from labs.provision import pulumi_cli
from labs.provision.operator import operator_clients
from labs.remote.keys import load_private_key
from labs.report.model import Report
from labs.report.progress import Progress
from labs.verify.runner import check_private_key

UP_TIMEOUT = 30 * 60
DESTROY_TIMEOUT = 30 * 60
SHIELD_NOTICE = ("   destroy is running and will finish; Ctrl-C is ignored until then "
                 "(interrupting it would leave resources that cost money)")


@dataclass
class E2eResult:
    report: Report | None
    status: ExitStatus
    steps: list[str] = field(default_factory=list)
    destroy_error: str = ""
    left: list[str] = field(default_factory=list)  # what the sweep still found after destroy


def run_e2e(stack: str, identity: str | None, progress: Progress, settle: float | None = None,
            connect_budget: float | None = None,
            clients_for: Callable[[str], Clients] = DefaultChainClients) -> E2eResult:
    pulumi_cli.pulumi_binary()  # no CLI: say so before anything exists that would need destroying
    if identity:  # a key that cannot be read or decrypted: now, not after `pulumi up`
        check_private_key(identity)
        load_private_key(identity)
    config = pulumi_cli.stack_config(stack)  # a missing passphrase is exit 2 here, before anything exists
    region = config.get("aws:region") or DEFAULT_REGION
    account = clients_for(region)
    progress.say(f"== preflight --stack {stack}")
    checked = lab_preflight.run_preflight(account, lab_preflight.program_config(config, stack), backend=False)
    progress.say(checked.render())
    if checked.exit_status is not ExitStatus.OK:
        return E2eResult(None, checked.exit_status, [f"preflight: {checked.summary()}; nothing was created"])
    steps: list[str] = []
    report: Report | None = None
    status = ExitStatus.OK
    started = time.monotonic()
    try:
        progress.say(f"== pulumi up --stack {stack}")
        pulumi_cli.run(["up", "--yes", "--skip-preview"], stack, timeout=UP_TIMEOUT, say=progress.say)
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
        destroy_error, left = _shielded(lambda: (_destroy_always(stack, progress), _whats_left(account, stack, progress)),
                                        progress)
    if destroy_error:
        steps.append(destroy_error)
    else:
        steps.append("destroyed")
    steps.append(left[0] if len(left) == 1 else f"LEFT BEHIND in the account ({len(left) - 1}): " + "; ".join(left[1:]))
    if (destroy_error or len(left) > 1) and status is ExitStatus.OK:
        status = ExitStatus.UNREACHABLE
    return E2eResult(report, status, steps, destroy_error, left[1:])


def _shielded(work: Callable[[], tuple[str, list[str]]], progress: Progress) -> tuple[str, list[str]]:
    """Run destroy and the sweep with Ctrl-C turned into a notice (pulumi is in its own session)."""
    previous = signal.signal(signal.SIGINT, lambda *_: progress.say(SHIELD_NOTICE))
    try:
        return work()
    finally:
        signal.signal(signal.SIGINT, previous)


def _destroy_always(stack: str, progress: Progress) -> str:
    progress.say(f"== pulumi destroy --stack {stack} (always; Ctrl-C is ignored until it ends)")
    argv = ["destroy", "--yes", "--skip-preview"]
    try:
        pulumi_cli.run(argv, stack, timeout=DESTROY_TIMEOUT, say=progress.say)
        return ""
    except RolelabError as error:
        progress.say(f"   destroy failed ({error}); clearing the stack's lock with `pulumi cancel --yes` "
                     "and trying once more")
    try:
        pulumi_cli.run(["cancel", "--yes"], stack, capture=True, timeout=120, say=progress.say)
    except RolelabError as error:
        progress.say(f"   pulumi cancel: {error}")  # no update to cancel is fine: the retry says the rest
    try:
        pulumi_cli.run(argv, stack, timeout=DESTROY_TIMEOUT, say=progress.say)
        return ""
    except RolelabError as error:
        return (f"DESTROY FAILED twice ({error}); resources may remain: run `pulumi refresh --stack {stack}` "
                f"then `pulumi destroy --stack {stack}`, or `rolelab sweep --region REGION --stack {stack}`")


def _whats_left(account: Clients, stack: str, progress: Progress) -> list[str]:
    """[headline, *one line per resource]: the sweep's dry run for this stack's tags."""
    progress.say(f"== sweep (dry run) for resources tagged lab=rolelab, stack={stack}")
    try:
        plan = find_lab_resources(account, stack)
    except (BotoCoreError, ClientError) as error:
        return [f"COULD NOT CHECK what is left ({error.__class__.__name__}: {error}); run "
                f"`rolelab sweep --region {account.region} --stack {stack}`"]
    progress.say(plan.render())
    if not plan.resources:
        return [f"sweep: nothing tagged stack={stack} is left in account {plan.account} ({account.region} and IAM)"]
    return ["", *(f"{r.kind} {r}" for r in plan.resources)]

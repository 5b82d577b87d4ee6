"""Running a drill of labs.lesson.drills on each student: the lab is judged as it is.

For each student: read the account and compare it with the declared hosts (a student whose
lab differs gets a failing finding with the repair line, and is not drilled); act; then,
for every student acted on, watch the checks derived from the state after the action,
confirm the operator-side facts, undo, read the account back and repair what is left, and
watch the restore. An API refusal is a finding for that student; the others go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
)

from labs.app.bad_practice import bad_practice
from labs.core.awserrors import api_error, infra_errors
from labs.lesson.account import associations, instance_facts
from labs.lesson.actions import Target, Undo
from labs.lesson.checks import Check, derive_checks, lab_policies
from labs.lesson.drills import Drill
from labs.lesson.findings import Finding, Status, observation
from labs.lesson.state import problems, read_view

if TYPE_CHECKING:
    from labs.app.sequence import LabRun

AS_DECLARED = "as declared"


@dataclass
class Acted:
    target: Target
    undo: Undo | None
    before: dict[str, tuple[str, str, str]]  # instance id -> (id, state, launch time) before the action


def run_drill(run: LabRun, drill: Drill, students: tuple[str, ...]) -> None:
    if drill.action is None:
        bad_practice(run, students)
        return
    acted: list[Acted] = []
    try:
        for student in students:
            target = Target(run.outputs, student)
            if lab_as_declared(run, drill.name, target):
                act(run, drill, target, acted)
        watch(run, drill, [a for a in acted if a.undo is not None or drill.action.refused_with])
    finally:
        restore(run, drill, acted)


def lab_as_declared(run: LabRun, phase: str, target: Target) -> bool:
    """Before acting: the student's part of the account as the outputs declare it, or a finding per difference."""
    with infra_errors(f"reading {target.student}'s lab"):
        found = problems(target.hosts(), read_view(run.operator, target.hosts()))
    for problem in found:
        run.record(observation(phase, problem.host, "lab-as-declared", "the lab as declared, before the drill",
                               AS_DECLARED, f"not as declared: {problem.what}",
                               hint=f"repair it with: {problem.repair} (or `rolelab local up` / `pulumi up`)"))
    return not found


def act(run: LabRun, drill: Drill, target: Target, acted: list[Acted]) -> None:
    action = drill.action
    ec2 = run.operator("ec2")
    host = target.with_role if action.name != "attach-role" else target.no_role
    before = {h.instance_id: instance_facts(ec2, h.instance_id) for h in target.hosts()}
    started = time.monotonic()
    entry = Acted(target, None, before)
    acted.append(entry)  # even if the call fails: a write may have landed before a timeout, so restore reads back
    try:
        with infra_errors(f"{drill.name} on {target.student}"):
            entry.undo = action.apply(run.operator, target)
        observed = "done"
    except ClientError as error:
        code, message = api_error(error)
        observed = code if action.refused_with else f"{code}: {message}"
    took = time.monotonic() - started
    expected = action.refused_with or "done"
    if action.refused_with and observed == "done":
        observed = "accepted: the instance now has two associations"
    run.record(observation(drill.name, host, action.name, action.cli_line(target), expected, observed, took,
                           hint=f"the API refused `{action.cli_line(target)}`" if observed != expected else ""))
    run.note(f"{host.label}: {action.says} -> {observed} in {took:.2f} s")


def _changed_hosts(drill: Drill, target: Target):
    declared = target.hosts()
    return [h for h in drill.action.after(target) if h not in declared]


def _checks(run: LabRun, hosts, phase: str, only: tuple[str, ...]) -> list[Check]:
    return [replace(c, phase=phase) for h in hosts
            for c in derive_checks(h, lab_policies(run.outputs.hosts, h.student), run.outputs.region) if c.id in only]


def watch(run: LabRun, drill: Drill, acted: list[Acted]) -> None:
    if drill.watch:
        measured = "iam-list-users" if "iam-list-users" in drill.watch else drill.watch[0]  # the lesson's command
        found = run.check([c for a in acted for c in _checks(run, _changed_hosts(drill, a.target), drill.name,
                                                             drill.watch)])
        for a in acted:
            for host in _changed_hosts(drill, a.target):
                mine = [f for f in found if f.host.instance_id == host.instance_id and f.check == measured]
                run.note(f"{host.label}: {measured} is {mine[0].expected if mine else '?'} after {converged(mine)}")
    for fact in drill.confirm:
        for a in acted:
            CONFIRMATIONS[fact](run, drill, a)


def _same_instance(run: LabRun, drill: Drill, a: Acted) -> None:
    host = a.target.no_role
    with infra_errors(f"confirming {host.label}"):
        now = instance_facts(run.operator("ec2"), host.instance_id)
    was = a.before[host.instance_id]
    same = now[0] == was[0] and now[2] == was[2]
    run.record(observation(drill.name, host, "same-instance", "ec2 describe-instances after the association",
                           "same instance, running", f"{'same' if same else 'replaced'} instance, {now[1]}"))


def _one_association(run: LabRun, drill: Drill, a: Acted) -> None:
    host = a.target.with_role
    with infra_errors(f"confirming {host.label}"):
        count = len(associations(run.operator("ec2"), host.instance_id))
    run.record(observation(drill.name, host, "one-association", "ec2 describe-iam-instance-profile-associations",
                           "1 association", f"{count} association{'s' if count != 1 else ''}"))


CONFIRMATIONS = {"same-instance": _same_instance, "one-association": _one_association}


def restore(run: LabRun, drill: Drill, acted: list[Acted]) -> None:
    """Undo, then read the account back (IAM is eventually consistent: within the settle budget)
    and repair whatever still differs from the declared state."""
    if not acted:
        return
    undone = time.monotonic()
    retry = dict(retry=retry_if_exception_type(Exception), stop=stop_after_attempt(4),
                 wait=wait_exponential(multiplier=0.5, max=4), reraise=True)
    for a in acted:
        if a.undo is not None:
            try:
                Retrying(**retry)(a.undo)
            except ClientError as error:  # already undone by someone else: the read-back decides
                run.note(f"{a.target.student}: undo answered {api_error(error)[0]}; reading the lab back")
    for a in acted:
        try:
            left = settled_problems(run, a.target)
            for problem in left:
                Retrying(**retry)(lambda p=problem: p.fix(run.operator))
                run.note(f"{problem.host.label}: restored: {problem.what} (repaired with {problem.repair})")
            if left:
                left = settled_problems(run, a.target)
        except Exception as error:  # noqa: BLE001 the restore must reach every student and say what is left
            run.record(observation(f"{drill.name}/restored", a.target.with_role, "restored", "the lab as declared",
                                   AS_DECLARED, f"could not read or repair the lab: {error}",
                                   hint="run `rolelab local up` (or `pulumi up --refresh`) to put the lab back"))
            continue
        for problem in left:
            run.record(observation(f"{drill.name}/restored", problem.host, "restored", "the lab as declared after "
                                   "the drill", AS_DECLARED, f"still not as declared: {problem.what}",
                                   hint=f"repair it with: {problem.repair}"))
    restored_phase = f"{drill.name}/{'re-attached' if drill.name == 'detach-policy' else 'restored'}"
    hosts = [h for a in acted if a.undo is not None for h in _changed_hosts(drill, a.target)]
    if drill.restored and hosts:
        declared = {h.instance_id: h for h in run.outputs.hosts}
        found = run.check(_checks(run, [declared[h.instance_id] for h in hosts], restored_phase, drill.restored),
                          waited=time.monotonic() - undone)  # the restore's time counts from the undo
        passed = sum(f.status is Status.PASS for f in found)
        run.note(f"restored: {len(hosts)} host(s) put back as declared; {passed}/{len(found)} checks as declared "
                 f"again after {converged(found)}")


def settled_problems(run: LabRun, target: Target) -> list:
    """The differences that remain once IAM has had the settle budget to show a change."""
    hosts = target.hosts()
    return Retrying(retry=retry_if_result(bool), stop=stop_before_delay(run.verifier.settle),
                    wait=wait_exponential(multiplier=0.25, max=2.0),
                    retry_error_callback=lambda state: state.outcome.result())(
        lambda: problems(hosts, read_view(run.operator, hosts)))


def converged(found: list[Finding]) -> str:
    """How long the slowest of these findings took to hold, or what was seen instead."""
    if not found:
        return "not checked"
    slowest = max(found, key=lambda f: f.seconds)
    if any(f.status is not Status.PASS for f in found):
        bad = next(f for f in found if f.status is not Status.PASS)
        return f"not seen within {bad.seconds:.1f} s (observed {bad.observed})"
    return f"{slowest.seconds:.1f} s ({slowest.attempts} {'try' if slowest.attempts == 1 else 'tries'})"

"""The lesson's console actions, done by the operator with boto3, then watched from the hosts.

Same code for aws and local mode. Each drill changes the declared state of a host,
derives the checks for that new state (so the expectations follow), waits for them to
hold (eventual consistency, timed), and restores the original state in a `finally`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

from botocore.exceptions import ClientError

from labs.errors import UsageError
from labs.operator import Clients, profile_arn
from labs.outputs import HostRecord, LabOutputs
from labs.verify.checks import Check, derive_checks, lab_policies
from labs.verify.report import Progress, Report
from labs.verify.result import CommandResult
from labs.verify.runner import CheckResult, Status, Verifier

WATCHED = ("imds-credentials", "iam-list-users", "sts-caller-identity")


@dataclass
class DrillContext:
    outputs: LabOutputs
    verifier: Verifier
    operator: Clients
    progress: Progress
    results: list[CheckResult] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.events.append(text)
        self.progress.say(f"  > {text}")

    def run_evaluated(self, check: Check, result: CommandResult) -> CheckResult:
        """A check whose command already ran (its output may hold a secret: it is redacted here)."""
        observed = check.evaluate(result)
        return self._record(CheckResult(check, Status.PASS if observed == check.expected else Status.FAIL,
                                        observed, 1, result.seconds, result=result.redacted()))

    def run(self, checks: list[Check]) -> list[CheckResult]:
        results = self.verifier.run(checks)
        self.results.extend(results)
        return results

    def assertion(self, phase: str, host: HostRecord, check_id: str, title: str, expected: str,
                  observed: str, seconds: float = 0.0) -> CheckResult:
        """An operator-side observation (an API answer), reported like any check."""
        check = Check(check_id, host, title, title, expected, evaluate=lambda _: observed, phase=phase)
        return self._record(CheckResult(check, Status.PASS if observed == expected else Status.FAIL, observed, 1,
                                        seconds, result=CommandResult(title, 0, observed, "", seconds, host.label)))

    def _record(self, result: CheckResult) -> CheckResult:
        self.results.append(result)
        if self.verifier.on_result:
            self.verifier.on_result(result)
        return result


def _checks(ctx: DrillContext, host: HostRecord, phase: str, only: tuple[str, ...] = WATCHED) -> list[Check]:
    policies = lab_policies(ctx.outputs.hosts, host.student)
    return [replace(c, phase=phase) for c in derive_checks(host, policies) if c.id in only]


def _association_ids(ec2, instance_id: str) -> list[str]:
    found = ec2.describe_iam_instance_profile_associations(Filters=[{"Name": "instance-id", "Values": [instance_id]}])
    return [a["AssociationId"] for a in found.get("IamInstanceProfileAssociations", [])
            if a.get("State") in ("associating", "associated")]


def _instance_facts(ec2, instance_id: str) -> tuple[str, str, str]:
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return instance["InstanceId"], instance["State"]["Name"], str(instance.get("LaunchTime", ""))


def _converged(results: list[CheckResult], check_id: str) -> str:
    result = next((r for r in results if r.check.id == check_id), None)
    if result is None:
        return "not checked"
    if result.status is not Status.PASS:
        return f"not seen within {result.seconds:.1f} s (observed {result.observed})"
    return f"{result.seconds:.1f} s ({result.attempts} {'try' if result.attempts == 1 else 'tries'})"


def attach_role(ctx: DrillContext, students: tuple[str, ...]) -> None:
    """Modify IAM role on the running no-role instance: it starts working, with no restart."""
    ec2 = ctx.operator("ec2")
    pairs = [(ctx.outputs.host("no-role", s), ctx.outputs.host("with-role", s)) for s in students]
    attached: dict[str, str] = {}
    try:
        before = {}
        for no_role, with_role in pairs:
            arn = profile_arn(ec2, with_role.instance_id)
            if arn is None:
                raise UsageError(f"{with_role.label} has no instance profile to lend; is the lab up as declared?")
            before[no_role.instance_id] = _instance_facts(ec2, no_role.instance_id)
            started = time.monotonic()
            association = ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": arn},
                                                             InstanceId=no_role.instance_id)
            attached[no_role.instance_id] = association["IamInstanceProfileAssociation"]["AssociationId"]
            ctx.note(f"{no_role.label}: associated {arn.rsplit('/', 1)[-1]} to running {no_role.instance_id} "
                     f"in {time.monotonic() - started:.2f} s")
        for no_role, _ in pairs:
            now = _instance_facts(ec2, no_role.instance_id)
            was = before[no_role.instance_id]
            same = now[0] == was[0] and now[2] == was[2]
            ctx.assertion("attach-role", no_role, "same-instance", "ec2 describe-instances after the association",
                          "same instance, running", f"{'same' if same else 'replaced'} instance, {now[1]}")
        checks = [c for no_role, with_role in pairs
                  for c in _checks(ctx, replace(no_role, role=with_role.role, policies=with_role.policies),
                                   "attach-role")]
        results = ctx.run(checks)
        for no_role, _ in pairs:
            mine = [r for r in results if r.check.host.label == no_role.label]
            ctx.note(f"{no_role.label}: role credentials reached the running host after {_converged(mine, 'iam-list-users')}")
    finally:
        for instance_id, association_id in attached.items():
            ec2.disassociate_iam_instance_profile(AssociationId=association_id)
        if attached:
            restored = ctx.run([c for no_role, _ in pairs if no_role.instance_id in attached
                                for c in _checks(ctx, no_role, "attach-role/restored", ("imds-credentials", "iam-list-users"))])
            ctx.note(f"restored: profile disassociated from {len(attached)} no-role host(s); "
                     f"{sum(r.status is Status.PASS for r in restored)}/{len(restored)} checks back to 'no role'")


def detach_policy(ctx: DrillContext, students: tuple[str, ...], policy_arn: str | None = None) -> None:
    """Detach the policy from the role: AccessDenied after IAM propagates; re-attach restores it."""
    iam = ctx.operator("iam")
    hosts = [ctx.outputs.host("with-role", s) for s in students]
    detached: list[tuple[HostRecord, str]] = []
    try:
        for host in hosts:
            arn = policy_arn or (host.policies[0] if host.policies else None)
            if not arn or arn not in host.policies:
                raise UsageError(f"{host.label}: role {host.role} does not declare policy {arn!r}")
            iam.detach_role_policy(RoleName=host.role, PolicyArn=arn)
            detached.append((host, arn))
            ctx.note(f"{host.label}: detached {arn.rsplit('/', 1)[-1]} from {host.role}")
        checks = [c for host, arn in detached
                  for c in _checks(ctx, replace(host, policies=tuple(p for p in host.policies if p != arn)),
                                   "detach-policy", ("iam-list-users", "iam-list-roles"))]
        results = ctx.run(checks)
        for host, arn in detached:
            mine = [r for r in results if r.check.host.label == host.label]
            ctx.note(f"{host.label}: the detach propagated: iam-list-users is "
                     f"{mine[0].check.expected if mine else '?'} after {_converged(mine, 'iam-list-users')}")
    finally:
        for host, arn in detached:
            iam.attach_role_policy(RoleName=host.role, PolicyArn=arn)
        if detached:
            results = ctx.run([c for host, _ in detached
                               for c in _checks(ctx, host, "detach-policy/re-attached", ("iam-list-users",))])
            for host, arn in detached:
                mine = [r for r in results if r.check.host.label == host.label]
                ctx.note(f"{host.label}: re-attached {arn.rsplit('/', 1)[-1]}; success again after "
                         f"{_converged(mine, 'iam-list-users')}")


def second_role(ctx: DrillContext, students: tuple[str, ...]) -> None:
    """One role per instance: a second instance-profile association is refused (IncorrectState)."""
    ec2 = ctx.operator("ec2")
    for student in students:
        host = ctx.outputs.host("with-role", student)
        arn = profile_arn(ec2, host.instance_id)
        if arn is None:
            raise UsageError(f"{host.label} has no instance profile; is the lab up as declared?")
        extra = None
        started = time.monotonic()
        try:
            try:
                extra = ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": arn},
                                                           InstanceId=host.instance_id)
                observed = "accepted: the instance now has two associations"
            except ClientError as error:
                observed = error.response["Error"]["Code"]
            ctx.assertion("second-role", host, "second-association-refused",
                          "ec2 associate-iam-instance-profile (a second one)", "IncorrectState", observed,
                          time.monotonic() - started)
            count = len(_association_ids(ec2, host.instance_id))
            ctx.assertion("second-role", host, "one-association", "ec2 describe-iam-instance-profile-associations",
                          "1 association", f"{count} association{'s' if count != 1 else ''}")
            ctx.note(f"{host.label}: a second association was answered with {observed}")
        finally:
            if extra is not None:
                ec2.disassociate_iam_instance_profile(
                    AssociationId=extra["IamInstanceProfileAssociation"]["AssociationId"])


DRILLS: dict[str, Callable[[DrillContext, tuple[str, ...]], None]] = {
    "attach-role": attach_role,
    "detach-policy": detach_policy,
    "second-role": second_role,
}


def all_drills() -> dict[str, Callable[[DrillContext, tuple[str, ...]], None]]:
    """The lesson's drills plus the anti-pattern (kept apart: it puts a real key on a host)."""
    from labs.bad_practice import bad_practice

    return {**DRILLS, "bad-practice": bad_practice}


def run_drills(names: list[str] | tuple[str, ...], outputs: LabOutputs, verifier: Verifier, operator: Clients,
               progress: Progress, report: Report, students: tuple[str, ...] | None = None,
               heading: Callable[[int, str, str], str] | None = None) -> None:
    """Run drills one after another; each one's results and events land in the report even if it fails."""
    drills = all_drills()
    for number, name in enumerate(names, start=1):
        drill = drills[name]
        if heading:
            progress.say(heading(number, name, drill.__doc__.strip().splitlines()[0]))
        ctx = DrillContext(outputs, verifier, operator, progress)
        try:
            drill(ctx, students or outputs.students())
        finally:
            report.add(ctx.results)
            report.events.extend(ctx.events)

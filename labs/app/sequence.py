"""One sequence for every command that judges a lab: connect, check, act, check, restore, report.

`verify`, `drill`, `demo` and `e2e` open a LabRun on the outputs, call `verify()` and/or
`drill()`, and take the report. Findings land in the report as they are made, hints come
from what was observed, and an API that does not answer is infrastructure (exit 3).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace

from labs.core.clients import Clients
from labs.core.errors import LabWrong
from labs.core.outputs import LabOutputs
from labs.lesson.checks import Check
from labs.lesson.findings import Finding
from labs.lesson.suite import lab_checks
from labs.provision.local import require_lab_cloud
from labs.report.model import Report
from labs.report.progress import Progress, per_host
from labs.verify.hints import explain
from labs.verify.runner import Verifier


@dataclass
class LabRun:
    outputs: LabOutputs
    operator: Clients
    verifier: Verifier
    progress: Progress
    report: Report = field(init=False)

    def __post_init__(self) -> None:
        self.report = Report(self.outputs.stack, self.outputs.mode)

    @classmethod
    @contextmanager
    def open(cls, outputs: LabOutputs, operator: Clients, progress: Progress, *, identity: str | None = None,
             settle: float | None = None, connect_budget: float | None = None, live: bool = True
             ) -> Iterator[LabRun]:
        """live: each finding is shown as it lands (the walkthrough narrates instead)."""
        require_public_addresses(outputs)
        with Verifier(outputs, identity=identity, settle=settle, connect_budget=connect_budget, operator=operator,
                      on_result=progress if live else None, on_wait=progress.waiting) as verifier:
            require_lab_cloud(outputs)  # after the inputs are checked, before anything is judged
            yield cls(outputs, operator, verifier, progress)

    # -- findings ---------------------------------------------------------------------------

    def record(self, finding: Finding) -> Finding:
        """A finding made outside the runner (an API answer, the account's state)."""
        self.report.add([finding])
        if self.verifier.on_result:
            self.verifier.on_result(finding)
        return finding

    def check(self, checks: list[Check], explained: bool = False, waited: float = 0.0) -> list[Finding]:
        """Run checks on the hosts; with `explained`, failures get hints from the account's state.
        `waited`: seconds already spent waiting for the change they watch (counted in their time)."""
        live = self.progress.running(per_host([c.host.label for c in checks])) if self.verifier.on_result else nullcontext()
        with live:
            found = [replace(f, seconds=f.seconds + waited) for f in self.verifier.run(checks)]
        if explained:
            found = explain(found, self.outputs, self.operator)
        self.report.add(found)
        return found

    def note(self, text: str) -> None:
        """What a drill did or measured, in order, for the report."""
        self.report.events.append(text)
        self.progress.say(f"  > {text}")

    # -- the steps ---------------------------------------------------------------------------

    def verify(self, students: tuple[str, ...] | None = None) -> list[Finding]:
        checks = lab_checks(self.outputs, students)
        self.progress.say(f"verifying {len(checks)} checks on {len({c.host.label for c in checks})} hosts of stack "
                          f"{self.outputs.stack!r} ({self.outputs.mode})")
        found = self.check(checks, explained=True)
        self.report.events.extend(self.verifier.events)
        return found

    def drill(self, names: tuple[str, ...], students: tuple[str, ...] | None = None,
              heading=None) -> None:
        from labs.app.drills import run_drill  # the drills' own module pulls in the anti-pattern's
        from labs.lesson.drills import DRILLS

        for number, name in enumerate(names, start=1):
            if heading:
                self.progress.say(heading(number, name, DRILLS[name].why))
            run_drill(self, DRILLS[name], students or self.outputs.students())

    def finish(self) -> Report:
        return self.report.finish()


def require_public_addresses(outputs: LabOutputs) -> None:
    """aws mode: a host without a public IPv4 can never answer SSH; say why now instead of timing out."""
    if outputs.mode != "aws":
        return
    for host in outputs.hosts:
        if not host.address:
            raise LabWrong(f"host {host.label} ({host.instance_id}) has no public IPv4: its subnet does not assign "
                           "one; set rolelab:subnetId to a public subnet (auto-assign public IPv4, a route to an "
                           "internet gateway) and run pulumi up")

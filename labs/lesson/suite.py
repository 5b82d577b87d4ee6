"""The whole lab's checks: every host's, derived from the outputs, in the outputs' order."""

from __future__ import annotations

from labs.core.outputs import LabOutputs
from labs.lesson.checks import Check, derive_checks, lab_policies


def lab_checks(outputs: LabOutputs, students: tuple[str, ...] | None = None) -> list[Check]:
    wanted = students or outputs.students()
    return [check for host in outputs.hosts if host.student in wanted
            for check in derive_checks(host, lab_policies(outputs.hosts, host.student), outputs.region)]

"""`local up` on a running stack, and `local preview`: bring the lab cloud to the declared state.

As `pulumi up --refresh` would: the declared state (the recorded outputs, with the config's
role, policies and exercise flag) is compared with what the lab cloud really holds, and
each difference is put back through the API, in place: policies attached and detached, an
instance profile associated or disassociated (the instance keeps its id, port and host key),
`http_tokens` modified, and, from exercise mode to the full lab, the role, its profile and
the association made on the running hosts. A change by hand or by an interrupted drill is
drift, and is put back the same way.

Config keys whose change means creating or replacing instances or the role (students,
imdsv1Demo, roleName, instanceType, sshPublicKey, and another region) are not converged
in place yet: they are refused in one line that says to run `local down` and `up`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace

from labs.core.errors import UsageError
from labs.core.outputs import HostRecord, LabOutputs
from labs.lesson.state import Problem, problems, read_view
from labs.program import config as lab_config

IN_PLACE = frozenset({"policies", "exercise", "ttlHours", "allowWorldSsh"})


@dataclass
class Convergence:
    stack: str
    outputs: LabOutputs  # as declared once converged
    values: dict[str, str]  # the config that declares it
    config_changes: dict[str, tuple[str | None, str | None]]
    changes: list[Problem]  # what differs now, each with its repair

    def describe(self) -> list[str]:
        lines = [f"~ config {key}: {old or '(default)'} -> {new or '(default)'}"
                 for key, (old, new) in self.config_changes.items()]
        lines += [f"~ update {p.host.label}: {p.what} ({p.repair})" for p in self.changes]
        return lines

    def to_dict(self) -> dict:
        return {"stack": self.stack, "config": {k: {"from": a, "to": b} for k, (a, b) in self.config_changes.items()},
                "changes": [{"host": p.host.label, "instance_id": p.host.instance_id, "change": p.what,
                             "repair": p.repair} for p in self.changes],
                "count": {"update": len(self.changes), "create": 0, "delete": 0, "replace": 0}}


def declared(outputs: LabOutputs, config: lab_config.LabConfig) -> LabOutputs:
    """The recorded hosts with what the config now declares for them (ids, ports and keys unchanged)."""
    def host(h: HostRecord) -> HostRecord:
        if h.name == "no-role" or config.exercise:
            return replace(h, role=None, policies=())
        return replace(h, role=config.role_name_for(h.student), policies=config.policy_arns())

    return replace(outputs, hosts=tuple(host(h) for h in outputs.hosts), exercise=config.exercise,
                   targets=config.targets())


def plan(outputs: LabOutputs, recorded: Mapping[str, str], values: Mapping[str, str], operator,
         students: tuple[str, ...] | None = None) -> Convergence:
    changed = {k: (recorded.get(k), values.get(k)) for k in sorted(set(recorded) | set(values))
               if recorded.get(k) != values.get(k)}
    needs_new = sorted(set(changed) - IN_PLACE)
    if needs_new:
        raise UsageError(f"stack {outputs.stack!r}: changing {', '.join(needs_new)} creates or replaces instances or "
                         f"the role, which local up does not do in place yet; run `rolelab local down --stack "
                         f"{outputs.stack}` and `up` again (only {', '.join(sorted(IN_PLACE))} change in place)")
    config = lab_config.parse({**values, "sshCidr": "127.0.0.1/32",
                               "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZ"
                                               "GhscHR4f converge"}, region=outputs.region, stack=outputs.stack)
    target = declared(outputs, config)
    unknown = [s for s in students or () if s not in target.students()]
    if unknown:
        raise UsageError(f"--student {unknown[0]!r}: no such student in stack {outputs.stack!r} "
                         f"(students: {', '.join(target.students())})")
    hosts = [h for h in target.hosts if not students or h.student in students]
    found = problems(hosts, read_view(operator, hosts), stack=outputs.stack)
    return Convergence(outputs.stack, target, dict(values), changed, found)


def apply(convergence: Convergence, operator) -> list[str]:
    """Put back each difference, in order; returns what was done, for people."""
    done = []
    for problem in convergence.changes:
        problem.fix(operator)
        done.append(f"{problem.host.label}: {problem.what} -> {problem.repair}")
    return done


def recorded_values(text: str) -> dict[str, str]:
    return dict(json.loads(text)["values"])

"""Drift: the lab cloud as it is, against the running stack's declared state, put back in place.

As `pulumi up --refresh` would: a change made by hand or by an interrupted drill (a detached
policy, a profile associated by hand, `http_tokens` changed) is listed with its repair line
and put back through the API. The instances keep their ids, ports and host keys. Config
changes are the program's business (labs/provision/converging.py); this runs after them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from labs.core.errors import UsageError
from labs.core.outputs import HostRecord, LabOutputs
from labs.lesson.state import Problem, problems, read_view
from labs.program import config as lab_config


@dataclass
class Convergence:
    """What `up` changes on a running stack: the program's steps, then the drift put back."""

    stack: str
    outputs: LabOutputs  # as declared once converged
    values: dict[str, str]  # the config that declares it
    config_changes: dict[str, tuple[str | None, str | None]]
    changes: list[Problem]  # drift: what differs now, each with its repair
    steps: list = field(default_factory=list)  # the program's changes (labs.provision.converging.Step)

    def describe(self) -> list[str]:
        lines = [f"  config {key}: {old or '(default)'} -> {new or '(default)'}"
                 for key, (old, new) in self.config_changes.items()]
        lines += [step.line() for step in self.steps]
        lines += [f"~ drift   {p.host.label}: {p.what} ({p.repair})" for p in self.changes]
        return lines

    def counts(self) -> dict[str, int]:
        ops = [s.op for s in self.steps]
        return {"update": ops.count("update") + len(self.changes), "create": ops.count("create"),
                "delete": ops.count("delete"), "replace": ops.count("replace")}

    def to_dict(self) -> dict:
        return {"stack": self.stack, "config": {k: {"from": a, "to": b} for k, (a, b) in self.config_changes.items()},
                "changes": [{"host": p.host.label, "instance_id": p.host.instance_id, "change": p.what,
                             "repair": p.repair} for p in self.changes],
                "steps": [{"op": s.op, "type": s.type, "name": s.name, "changed": list(s.changed)} for s in self.steps],
                "count": self.counts()}


def declared(outputs: LabOutputs, config: lab_config.LabConfig) -> LabOutputs:
    """The recorded hosts with what the config now declares for them (ids, ports and keys unchanged)."""
    def host(h: HostRecord) -> HostRecord:
        if h.name == "no-role" or config.exercise:
            return replace(h, role=None, policies=())
        return replace(h, role=config.role_name_for(h.student), policies=config.policy_arns())

    return replace(outputs, hosts=tuple(host(h) for h in outputs.hosts), exercise=config.exercise,
                   targets=config.targets())


def plan(outputs: LabOutputs, values: Mapping[str, str], operator, students: tuple[str, ...] | None = None,
         config_changes: dict | None = None) -> Convergence:
    """The drift of the stack (or of `students`) from what `values` declares for its recorded hosts."""
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
    return Convergence(outputs.stack, target, dict(values), config_changes or {}, found)


def config_changes(recorded: Mapping[str, str], values: Mapping[str, str]) -> dict:
    return {k: (recorded.get(k), values.get(k)) for k in sorted(set(recorded) | set(values))
            if recorded.get(k) != values.get(k)}


def apply(convergence: Convergence, operator) -> list[str]:
    """Put back each difference, in order; returns what was done, for people."""
    done = []
    for problem in convergence.changes:
        problem.fix(operator)
        done.append(f"{problem.host.label}: {problem.what} -> {problem.repair}")
    return done

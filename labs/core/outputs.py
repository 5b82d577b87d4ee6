"""The stack outputs: the one contract between provisioning and verification.

Everything downstream (checks, drills, reports, ssh) reads only this. Its schema is
the same in aws and local mode; only addresses, ports, the login user and the IMDS
endpoint differ, and local mode adds the key and known_hosts paths it made.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from labs.core.errors import UsageError

SCHEMA_VERSION = 1
AWS_IMDS_ENDPOINT = "http://169.254.169.254"
AWS_LOGIN_USER = "ec2-user"
MODES = ("aws", "local")


@dataclass(frozen=True)
class HostRecord:
    student: str
    name: str  # the host's kind: no-role, with-role or imdsv1
    instance_id: str
    address: str
    port: int
    user: str
    role: str | None
    policies: tuple[str, ...]  # ARNs of the role's managed policies (empty without a role)
    imds_endpoint: str
    http_tokens: str  # "required" (IMDSv2) or "optional"

    @property
    def label(self) -> str:
        return f"{self.student}/{self.name}"


@dataclass(frozen=True)
class LabOutputs:
    mode: str
    region: str
    stack: str
    hosts: tuple[HostRecord, ...]
    # local mode only: where the lab cloud put the key, the pinned host keys, its API
    private_key_path: str | None = None
    known_hosts: str | None = None
    endpoint: str | None = None
    operator_credentials: str | None = None
    exercise: bool = False  # the students make the role themselves (hosts start without one)
    targets: dict[str, dict] = field(default_factory=dict)  # student -> {"role", "policies"}: the lesson's aim
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def students(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.student for h in self.hosts))

    def host(self, name: str, student: str | None = None) -> HostRecord:
        matches = [h for h in self.hosts if h.name == name and (student is None or h.student == student)]
        if not matches:
            known = ", ".join(sorted({h.name for h in self.hosts}))
            raise UsageError(f"no host {name!r}" + (f" for student {student!r}" if student else "")
                             + f" in stack {self.stack!r}; hosts are: {known}")
        if len(matches) > 1:
            raise UsageError(f"host {name!r} exists for {len(matches)} students; pick one with --student "
                             f"({', '.join(h.student for h in matches)})")
        return matches[0]

    def target(self, student: str) -> tuple[str, tuple[str, ...]]:
        """(role, policy ARNs) the student's lesson aims at; from the with-role host when not exported."""
        aim = self.targets.get(student)
        if aim:
            return str(aim["role"]), tuple(aim.get("policies") or ())
        host = self.host("with-role", student)
        return host.role or "DemoRoleForEC2", host.policies

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data["hosts"] = [dict(asdict(h), policies=list(h.policies)) for h in self.hosts]
        return {k: v for k, v in data.items() if v is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"


def host_dict(**values: Any) -> dict[str, Any]:
    """The program's export for one host, in the schema's field order."""
    return {f.name: values[f.name] for f in fields(HostRecord)}


def _fail(source: str, problem: str) -> UsageError:
    return UsageError(f"{source}: {problem}; re-create it with `rolelab outputs --json` or `pulumi stack output --json`")


def from_dict(data: Any, source: str = "outputs") -> LabOutputs:
    """Validate an outputs document (from JSON, the Pulumi CLI or the local engine)."""
    if not isinstance(data, dict):
        raise _fail(source, "not a JSON object")
    missing = [k for k in ("mode", "region", "hosts") if k not in data]
    if missing:
        raise _fail(source, f"missing {', '.join(missing)}")
    if data["mode"] not in MODES:
        raise _fail(source, f"mode must be aws or local, not {data['mode']!r}")
    if not isinstance(data["hosts"], list) or not data["hosts"]:
        raise _fail(source, "hosts must be a non-empty list")
    hosts = []
    wanted = {f.name for f in fields(HostRecord)}
    for index, raw in enumerate(data["hosts"]):
        if not isinstance(raw, dict):
            raise _fail(source, f"hosts[{index}] is not an object")
        absent = sorted(wanted - set(raw))
        if absent:
            raise _fail(source, f"hosts[{index}] lacks {', '.join(absent)}")
        try:
            record = HostRecord(**{k: raw[k] for k in wanted})
            record = replace(record, port=int(record.port), policies=tuple(record.policies or ()))
        except (TypeError, ValueError) as exc:
            raise _fail(source, f"hosts[{index}] is malformed ({exc})") from None
        hosts.append(record)
    if not isinstance(data.get("exercise", False), bool):
        raise _fail(source, f"exercise must be true or false, not {data['exercise']!r}")
    targets = data.get("targets", {})
    if not isinstance(targets, dict) or not all(
            isinstance(t, dict) and isinstance(t.get("role"), str) and isinstance(t.get("policies", []), list)
            for t in targets.values()):
        raise _fail(source, "targets must map each student to {\"role\": NAME, \"policies\": [ARN, ...]}")
    known = {f.name for f in fields(LabOutputs)} - {"hosts", "extra"}
    return LabOutputs(
        hosts=tuple(hosts),
        stack=str(data.get("stack") or "unknown"),
        **{k: data[k] for k in known - {"stack"} if k in data},
        extra={k: v for k, v in data.items() if k not in known | {"hosts"}},
    )


def load(path: Path) -> LabOutputs:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"--outputs {path}: no such file; write it with `pulumi stack output --json > {path}`") from None
    except OSError as exc:
        raise UsageError(f"--outputs {path}: cannot read it ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"--outputs {path}", f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return from_dict(data, f"--outputs {path}")

"""The stack outputs: the one contract between provisioning and verification.

Everything downstream (checks, drills, reports, ssh) reads only this. Its schema is
the same in aws and local mode; only addresses, ports, the login user and the IMDS
endpoint differ, and local mode adds the key and known_hosts paths it made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

from labs.core import grammar
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
    # The SSH host key the program made ("ssh-ed25519 AAAA..."): pinned before the host boots.
    # None in outputs written before the program made host keys (aws mode then reads the console).
    host_key: str | None = None

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
    return {f.name: values.get(f.name) for f in fields(HostRecord)}


def _fail(source: str, problem: str) -> UsageError:
    return UsageError(f"{source}: {problem}; re-create it with `rolelab outputs --json` or `pulumi stack output --json`")


def _imds_endpoint_problem(mode: str, value: object) -> str | None:
    """Local hosts reach their own IMDS on loopback; EC2 hosts only the link-local one."""
    if mode == "aws":
        return None if value == AWS_IMDS_ENDPOINT else f"must be {AWS_IMDS_ENDPOINT} in aws mode"
    found = _LOCAL_IMDS.fullmatch(value) if isinstance(value, str) else None
    if found and all(int(octet) <= 255 for octet in found.groups()[:3]) and 1 <= int(found.group(4)) <= 65535:
        return None
    return "must be http://127.x.y.z:PORT in local mode"


_LOCAL_IMDS = re.compile(r"http://127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})")

# Each host field and the grammar it must follow (a value reaches ssh's argv or a shell line).
_HOST_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "student": (partial(grammar.matches, grammar.LABEL), "a student name (letters, digits, _.-)"),
    "name": (partial(grammar.matches, grammar.LABEL), "a host name such as with-role"),
    "instance_id": (partial(grammar.matches, grammar.INSTANCE_ID), "an EC2 instance id (i- and hex digits)"),
    "address": (grammar.is_host_address, "an IP address or DNS name"),
    "port": (grammar.is_port, "a port number 1..65535"),
    "user": (partial(grammar.matches, grammar.POSIX_USER),
             "a POSIX user name (letters, digits, _.-; not starting with -)"),
    "role": (lambda v: v is None or grammar.matches(grammar.ROLE_NAME, v), "an IAM role name, or null"),
    "policies": (lambda v: isinstance(v, list) and all(grammar.matches(grammar.POLICY_ARN, p) for p in v),
                 "a list of IAM policy ARNs"),
    "http_tokens": (lambda v: v in ("required", "optional"), "required or optional"),
    "host_key": (lambda v: v is None or grammar.matches(grammar.HOST_KEY, v),
                 "an OpenSSH public key ('ssh-ed25519 AAAA...'), or null"),
}
_OPTIONAL_HOST_FIELDS = ("host_key",)


def _host(source: str, index: int, raw: object, mode: str) -> HostRecord:
    if not isinstance(raw, dict):
        raise _fail(source, f"hosts[{index}] is not an object")
    wanted = [f.name for f in fields(HostRecord)]
    absent = [k for k in wanted if k not in raw and k not in _OPTIONAL_HOST_FIELDS]
    if absent:
        raise _fail(source, f"hosts[{index}] lacks {', '.join(absent)}")
    for key, (valid, grammar_text) in _HOST_FIELDS.items():
        if key == "address" and mode == "aws" and raw.get(key) == "":
            continue  # an instance without a public IPv4: verify says so, with the fix
        if not valid(raw.get(key)):
            raise _fail(source, f"hosts[{index}].{key} = {grammar.shown(raw.get(key))} is not {grammar_text}")
    problem = _imds_endpoint_problem(mode, raw["imds_endpoint"])
    if problem:
        raise _fail(source, f"hosts[{index}].imds_endpoint = {grammar.shown(raw['imds_endpoint'])} {problem}")
    return HostRecord(**dict({k: raw.get(k) for k in wanted}, policies=tuple(raw["policies"])))


def from_dict(data: Any, source: str = "outputs") -> LabOutputs:
    """Validate an outputs document (from JSON, the Pulumi CLI or the local engine).

    It is untrusted input (CI artifacts, copies passed around): every field is checked
    against its own grammar before anything downstream uses it.
    """
    if not isinstance(data, dict):
        raise _fail(source, "not a JSON object")
    missing = [k for k in ("mode", "region", "hosts") if k not in data]
    if missing:
        raise _fail(source, f"missing {', '.join(missing)}")
    if data["mode"] not in MODES:
        raise _fail(source, f"mode must be aws or local, not {grammar.shown(data['mode'])}")
    if not grammar.matches(grammar.REGION, data["region"]):
        raise _fail(source, f"region = {grammar.shown(data['region'])} is not an AWS region such as us-east-1")
    if data.get("stack") is not None and not grammar.matches(grammar.STACK, data["stack"]):
        raise _fail(source, f"stack = {grammar.shown(data['stack'])} is not a stack name (letters, digits, _.-)")
    for key in ("private_key_path", "known_hosts", "endpoint", "operator_credentials"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value.isprintable()):
            raise _fail(source, f"{key} = {grammar.shown(value)} is not a printable string")
    if not isinstance(data["hosts"], list) or not data["hosts"]:
        raise _fail(source, "hosts must be a non-empty list")
    hosts = [_host(source, index, raw, data["mode"]) for index, raw in enumerate(data["hosts"])]
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

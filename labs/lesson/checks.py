"""The lesson's checks for one host, derived from its declared state in the outputs.

Never from host names: a host's role, policies and http_tokens decide what must be seen,
so any stage of a drill, or any custom config, is verified by the same code.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from labs.core.outputs import HostRecord
from labs.core.result import CommandResult
from labs.lesson import imds_script
from labs.lesson.classify import Outcome, classify
from labs.lesson.findings import Finding, Status
from labs.lesson.probes import Probe, expected, probes_for

MIN_VALIDITY = 300  # credentials are replaced at least 5 minutes before they expire
CREDENTIAL_FIELDS = ("Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration")
INFO_FIELDS = ("Code", "LastUpdated", "InstanceProfileArn", "InstanceProfileId")


@dataclass(frozen=True)
class Check:
    id: str
    host: HostRecord
    title: str  # what a person would type, e.g. "aws iam list-users"
    command: str
    expected: str
    evaluate: Callable[[CommandResult], str] = field(compare=False, repr=False)
    undo: str | None = None  # run on the host after an observed Success (e.g. delete a probe bucket)
    must_not_exist: str | None = None  # an IAM user the operator confirms was not created
    hint: str = ""  # shown with a failure: where to look
    phase: str = "verify"  # or the drill and step that asked for it

    @property
    def label(self) -> str:
        return f"{self.phase}:{self.host.label}:{self.id}"


def finding(check: Check, status: Status, observed: str, attempts: int = 1, seconds: float = 0.0, *,
            evidence: CommandResult | None = None, note: str = "", converged_after: float | None = None) -> Finding:
    """What running a check found; a failure carries the check's own hint until one from the cause replaces it."""
    return Finding(check.phase, check.host, check.id, check.title, check.command, check.expected, observed, status,
                   attempts, seconds, evidence, check.hint if status is not Status.PASS else "", note,
                   converged_after)


def probe_suffix(host: HostRecord) -> str:
    """Unique per host, valid in IAM user and S3 bucket names."""
    return re.sub(r"[^a-z0-9-]", "-", f"{host.student}-{host.instance_id[-8:]}".lower())


def aws_probe_check(host: HostRecord, probe: Probe, region: str) -> Check:
    command, undo = probe.render(probe_suffix(host), region)
    outcome = expected(probe, host.role, host.policies)
    return Check(
        id=probe.id, host=host, title=command.split(" --output")[0], command=command, expected=str(outcome),
        evaluate=lambda result: str(classify(result)), undo=undo,
        must_not_exist=f"rolelab-probe-{probe_suffix(host)}" if probe.id == "iam-create-user" else None,
    )


def _tokenless(host: HostRecord) -> Check:
    want = "HTTP 401" if host.http_tokens == "required" else "HTTP 200"

    def evaluate(result: CommandResult) -> str:
        status, _ = imds_script.parse_sections(result.stdout).get("tokenless", (0, ""))
        return f"HTTP {status}" if status else "IMDS unreachable"

    return Check("imds-tokenless", host, "curl IMDS without a token", imds_script.tokenless_script(host.imds_endpoint),
                 want, evaluate)


def _token_flow(host: HostRecord) -> Check:
    want = f"role {host.role}: credentials valid" if host.role else "no role (404)"

    def evaluate(result: CommandResult) -> str:
        sections = imds_script.parse_sections(result.stdout)
        token_status, token_length = sections.get("token", (0, "0"))
        if token_status == 0:
            return "IMDS unreachable (no answer to PUT /latest/api/token)"
        if token_status != 200 or token_length.strip() in ("", "0"):
            return f"no IMDSv2 token (PUT /latest/api/token answered HTTP {token_status})"
        status, name = sections.get("role", (0, ""))
        if status == 404:
            return "no role (404)"
        if status != 200:
            return f"IMDS unreachable (HTTP {status})" if status == 0 else f"role lookup HTTP {status}"
        name = name.strip()
        problem = _credentials_problem(sections) or _info_problem(sections)
        return f"role {name}: {problem or 'credentials valid'}"

    return Check("imds-credentials", host, "IMDSv2 token, role name, iam/info, credentials",
                 imds_script.token_flow_script(host.imds_endpoint), want, evaluate)


def _credentials_problem(sections: dict[str, tuple[int, str]]) -> str:
    status, body = sections.get("credentials", (0, ""))
    if status != 200:
        return f"credentials HTTP {status}"
    try:
        document = json.loads(body)
    except ValueError:
        return "credentials are not JSON"
    missing = [f for f in CREDENTIAL_FIELDS if not document.get(f)]
    if missing:
        return "credentials lack " + ", ".join(missing)
    if document["Code"] != "Success" or not document["AccessKeyId"].startswith("ASIA"):
        return f"credentials are not temporary role keys (Code {document['Code']}, key {document['AccessKeyId'][:4]}...)"
    try:
        expires = dt.datetime.strptime(document["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        now = int(sections["now"][1].strip())
    except KeyError:
        return "the host's clock was not read"
    except ValueError:
        return f"Expiration {document['Expiration']!r} is not an IMDS timestamp"
    remaining = expires.timestamp() - now
    if remaining < MIN_VALIDITY:
        return f"credentials expire in {remaining:.0f} s (must be replaced at least {MIN_VALIDITY} s before)"
    return ""


def _info_problem(sections: dict[str, tuple[int, str]]) -> str:
    status, body = sections.get("info", (0, ""))
    try:
        info = json.loads(body) if status == 200 else {}
    except ValueError:
        info = {}
    missing = [f for f in INFO_FIELDS if not info.get(f)]
    return f"iam/info lacks {', '.join(missing)}" if missing else ""


def caller_identity(result: CommandResult) -> str:
    """`aws sts get-caller-identity` as the lesson reads it: the ARN after the account
    (assumed-role/ROLE/SESSION, user/NAME), or the outcome when the call failed."""
    outcome = classify(result)
    if outcome is not Outcome.SUCCESS:
        return str(outcome)
    arn = json.loads(result.stdout).get("Arn", "")
    return arn.split(":", 5)[-1] if arn.count(":") >= 5 else arn


def _caller_identity(host: HostRecord) -> Check:
    want = f"assumed-role/{host.role}/{host.instance_id}"

    return Check("sts-caller-identity", host, "aws sts get-caller-identity", "aws sts get-caller-identity --output json",
                 want, caller_identity, hint="the identity must be the role, with the instance id as session name")


NOTHING_STORED_SCRIPT = (
    "test -e ~/.aws/credentials && echo credentials-file; "
    "grep -qs aws_access_key_id ~/.aws/config && echo keys-in-config; "
    "env | grep -q '^AWS_ACCESS_KEY_ID=' && echo access-key-env; "
    "env | grep -q '^AWS_SECRET_ACCESS_KEY=' && echo secret-key-env; "
    "echo checked"
)


def _nothing_stored(host: HostRecord) -> Check:
    def evaluate(result: CommandResult) -> str:
        lines = result.stdout.split()
        if "checked" not in lines:
            return f"could not look (exit {result.rc})"
        found = [line for line in lines if line != "checked"]
        return "stored: " + ", ".join(found) if found else "nothing stored"

    return Check("nothing-stored", host, "no ~/.aws/credentials, no AWS_ACCESS_KEY_ID", NOTHING_STORED_SCRIPT,
                 "nothing stored", evaluate, hint="credentials must come from the role via IMDS, never from files")


def derive_checks(host: HostRecord, lab_policies: tuple[str, ...], region: str) -> list[Check]:
    """Every check for one host; lab_policies (the student's) choose which probes run, the
    outputs' region how some are spelled (S3's LocationConstraint)."""
    checks = [_tokenless(host), _token_flow(host)]
    checks += [aws_probe_check(host, probe, region) for probe in probes_for(lab_policies)]
    if host.role:
        checks.append(_caller_identity(host))
    checks.append(_nothing_stored(host))
    return checks


def lab_policies(hosts: tuple[HostRecord, ...], student: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for h in hosts if h.student == student for p in h.policies))

"""Hints from what was observed: the cause of a failure, and the command that repairs it.

First from the observation itself (SSH refused or timed out, IMDS silent, a host key that
changed); then, for failures the hosts answered, from the operator's read-only view of the
account: a policy not attached, a profile on a host declared without a role, a trust policy
that does not allow EC2. The IMDS hint is given only when IMDS did not answer.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from labs.core.clients import Clients
from labs.core.outputs import LabOutputs
from labs.lesson.findings import Finding, Status
from labs.lesson.state import problems, read_view

log = logging.getLogger("rolelab.hints")
IMDS_HINT = "IMDS did not answer on this host: look at the instance metadata service (endpoint, hop limit), not at IAM"
STORED_HINT = ("credentials are stored on the host: remove ~/.aws/credentials (and AWS_ACCESS_KEY_ID); "
               "the role's credentials come from IMDS")


def unreachable_hint(finding: Finding, mode: str, cause: str, attempts: int, seconds: float,
                     stack: str = "local") -> str:
    host = finding.host
    waited = f"no SSH from {host.address}:{host.port} after {attempts} attempt(s) in {seconds:.1f} s"
    if cause == "auth":
        return f"{waited}: the key was refused; pass the lab key pair's private key with --identity"
    if mode == "local":
        return (f"{waited} (sshd {cause}): see `rolelab local status --stack {stack}`; `rolelab local down --stack "
                f"{stack}` and `up` restart it")
    if cause == "refused":
        return f"{waited} (refused): the instance is booting, stopped or sshd is down; check it in the EC2 console"
    return (f"{waited} (timed out): the security group must allow port 22 from your address "
            "(rolelab:sshCidr), and the instance needs a public IPv4 address")


def observed_hint(finding: Finding) -> str:
    """The hint the observation alone supports."""
    if finding.status is Status.PASS:
        return ""
    if finding.observed == "host key mismatch":
        return ("the host offered another key than the pinned one: the instance was replaced or the connection is "
                "intercepted; nothing was sent. Re-create the outputs (rolelab local up / pulumi up) to re-pin")
    if "IMDS unreachable" in finding.observed or finding.observed.startswith("no IMDSv2 token"):
        return IMDS_HINT
    if finding.check == "nothing-stored" and finding.observed.startswith("stored:"):
        return STORED_HINT
    return _outcome_hint(finding) or finding.hint


def _outcome_hint(finding: Finding) -> str:
    """An aws CLI outcome other than the declared state predicts, said in terms of that state."""
    role, seen, want = finding.host.role, finding.observed.split(";")[0], finding.expected
    if not role and seen != "NoCredentials" and want in ("NoCredentials", "no role (404)"):
        return ("this host is declared without a role but found credentials: an instance profile is associated "
                "with it, or keys are stored on it (aws ec2 describe-iam-instance-profile-associations)")
    if role and (seen == "NoCredentials" or seen == "no role (404)"):
        return (f"no credentials reached this host although it declares role {role}: the instance profile "
                "association, or the role's trust policy (it must allow ec2.amazonaws.com)")
    if role and want == "Success" and seen == "AccessDenied":
        return (f"role {role} is not allowed this call: compare `aws iam list-attached-role-policies --role-name "
                f"{role}` with the declared policies")
    if role and want == "AccessDenied" and seen == "Success":
        return f"role {role} allows more than the declared policies: look for an extra policy attached to it"
    return ""


def imds_silence_is_unreachable(findings: list[Finding]) -> list[Finding]:
    """A host whose IMDS did not answer at all is infrastructure (exit 3), not a wrong lab: its IMDS
    findings, and the NoCredentials that silence explains, become unreachable, the IMDS hint kept."""
    silent = {f.host.label for f in findings if f.status is Status.FAIL and f.observed.startswith("IMDS unreachable")}
    return [replace(f, status=Status.UNREACHABLE) if f.status is Status.FAIL and f.host.label in silent
            and f.hint == IMDS_HINT else f for f in findings]


def explain(findings: list[Finding], outputs: LabOutputs, operator: Clients | None) -> list[Finding]:
    """Findings with hints from the cause. Reads the account only for students with a failure
    the hosts answered; a failure to read keeps the observation's hint."""
    findings = [f.with_hint(observed_hint(f)) if f.status is Status.FAIL else f for f in findings]
    # A host whose IMDS did not answer explains its own NoCredentials: the aws CLI found no source.
    silent = {f.host.label for f in findings if observed_hint(f) == IMDS_HINT}
    findings = [f.with_hint(IMDS_HINT) if f.status is Status.FAIL and f.host.label in silent
                and f.observed.split(";")[0] == "NoCredentials" else f for f in findings]
    findings = imds_silence_is_unreachable(findings)
    failing = {f.student for f in findings if f.status is Status.FAIL and f.observed != "host key mismatch"
               and not (f.check == "nothing-stored")}
    if not failing or operator is None:
        return findings
    causes: dict[str, list[str]] = {}
    for student in failing:
        hosts = [h for h in outputs.hosts if h.student == student]
        try:
            for problem in problems(hosts, read_view(operator, hosts)):
                causes.setdefault(problem.host.label, []).append(problem.line())
        except Exception as error:  # noqa: BLE001 a hint is best effort; the finding stands without it
            log.debug("could not read the account for %s: %s", student, error)
    explained = []
    for f in findings:
        cause = causes.get(f.host.label)
        if f.hint == IMDS_HINT:
            pass  # the host's IMDS did not answer: that is what the aws CLI ran into, whatever the account says
        elif f.status is Status.FAIL and cause and f.check != "nothing-stored" and f.observed != "host key mismatch":
            f = replace(f, hint="; ".join(cause[:2]) + ("" if len(cause) <= 2 else f" (+{len(cause) - 2} more)"))
        explained.append(f)
    return explained

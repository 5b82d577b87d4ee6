"""The IMDS conversation, run on the host with curl, and its parsing.

One shell command per check keeps SSH round trips low; each curl's body and HTTP status
come back in a delimited section that is parsed here, not on the host.
"""

from __future__ import annotations

import shlex

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
SECTION = "=== rolelab:"


def _fetch(name: str, url: str, *curl_args: str) -> str:
    args = " ".join(curl_args)
    return (f"printf '\\n{SECTION}{name}\\n'; curl -s --max-time 3 {args} -w '\\n%{{http_code}}' "
            f"{shlex.quote(url)} || printf '\\n000'")


def tokenless_script(endpoint: str) -> str:
    """One request without a token: IMDSv2-required hosts must answer 401."""
    return _fetch("tokenless", f"{endpoint}/latest/meta-data/instance-id")


def token_flow_script(endpoint: str) -> str:
    """PUT a token, then read the role name, iam/info and the role's credentials with it.

    Every URL is shell-quoted: the endpoint comes from the outputs file, untrusted input."""
    base = f"{endpoint}/latest/meta-data/iam"
    with_token = f'-H "{TOKEN_HEADER}: $T"'
    return "; ".join([
        f"P=$(curl -s --max-time 3 -X PUT -H '{TTL_HEADER}: 300' -w '\\n%{{http_code}}' "
        f"{shlex.quote(endpoint + '/latest/api/token')})",
        "T=$(printf '%s\\n' \"$P\" | sed -n 1p)",
        f"printf '\\n{SECTION}token\\n%s\\n%s' \"${{#T}}\" \"$(printf '%s\\n' \"$P\" | sed -n '$p')\"",
        _fetch("role", f"{base}/security-credentials/", with_token),
        _fetch("info", f"{base}/info", with_token),
        f"R=$(curl -s --max-time 3 {with_token} {shlex.quote(base + '/security-credentials/')})",
        f"printf '\\n{SECTION}now\\n%s\\n200' \"$(date -u +%s)\"",
        f"printf '\\n{SECTION}credentials\\n'; curl -s --max-time 3 {with_token} -w '\\n%{{http_code}}' "
        f"{shlex.quote(base + '/security-credentials/')}\"$R\" || printf '\\n000'",
    ])


def parse_sections(stdout: str) -> dict[str, tuple[int, str]]:
    """{name: (http status, body)} from the script's delimited output."""
    sections: dict[str, tuple[int, str]] = {}
    for chunk in stdout.split(f"\n{SECTION}")[1:]:
        name, _, rest = chunk.partition("\n")
        body, _, status = rest.rpartition("\n")
        try:
            sections[name.strip()] = (int(status.strip() or 0), body)
        except ValueError:
            sections[name.strip()] = (0, rest)
    return sections

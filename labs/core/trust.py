"""Reading a role's trust policy: may EC2 assume it, and if not, why not.

EC2 hands an instance credentials only when the instance profile's role trusts the
service principal ec2.amazonaws.com with sts:AssumeRole (AWS's "Troubleshoot IAM and
Amazon EC2"). The lab cloud enforces this for IMDS; `check` and hints explain it.
"""

from __future__ import annotations

import json
import urllib.parse

EC2_PRINCIPAL = "ec2.amazonaws.com"
EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": EC2_PRINCIPAL}, "Action": "sts:AssumeRole"}]}


def _as_list(value) -> list:
    return [value] if isinstance(value, (str, dict)) else list(value or [])


def statements(document: object) -> list[dict]:
    """The Allow statements of a trust policy (IAM returns the document URL-encoded)."""
    if isinstance(document, str):
        try:
            document = json.loads(urllib.parse.unquote(document))
        except ValueError:
            return []
    found = document.get("Statement", []) if isinstance(document, dict) else []
    return [s for s in _as_list(found) if isinstance(s, dict) and s.get("Effect") == "Allow"
            and "sts:AssumeRole" in _as_list(s.get("Action"))]


def principals(statement: dict) -> list[str]:
    """Every principal of a statement, as 'Service:x', 'AWS:y' or '*'."""
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    return [f"{kind}:{value}" for kind, values in principal.items() for value in _as_list(values)]


def trusts_ec2(document: object) -> bool:
    return any(f"Service:{EC2_PRINCIPAL}" in principals(s) for s in statements(document))


def trust_problem(document: object) -> str:
    """Empty when the trust is exactly what the lesson wants; else the reason, in words."""
    found = [p for s in statements(document) for p in principals(s)]
    if "*" in found or "AWS:*" in found:
        return "the trust policy lets any principal (*) assume the role"
    accounts = [p.split(":", 1)[1] for p in found if p.startswith("AWS:")]
    if accounts:
        return f"the trust policy lets an account or user assume the role ({', '.join(accounts)}), not the EC2 service"
    if f"Service:{EC2_PRINCIPAL}" not in found:
        others = [p.split(":", 1)[1] for p in found if p.startswith("Service:")]
        return (f"the trust policy names {', '.join(others)}, not {EC2_PRINCIPAL}" if others
                else f"the trust policy does not let {EC2_PRINCIPAL} assume the role")
    return ""

"""The grammars of names that cross a trust boundary (outputs files, config, rosters).

A value that reaches an argv, a shell line, a path or a config file is checked against
what AWS or POSIX allows, so it can never become an option or a command.
"""

from __future__ import annotations

import ipaddress
import re

# AWS: "[\w+=,.@-]+", 1..64; \w there is ASCII only.
ROLE_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")
REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d")
INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
# POSIX portable user names (and what useradd accepts): never a leading hyphen.
POSIX_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
POLICY_ARN = re.compile(r"arn:aws(-cn|-us-gov|-iso[a-z]?)?:iam::(aws|\d{12}):policy/[A-Za-z0-9_+=,.@/-]{1,512}")
LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")  # student, host kind: shown, never "." or ".."
STACK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")  # Pulumi's stack names; a path component here
# An OpenSSH public key without its comment: the type, one space, the base64 blob (a known_hosts line's tail).
HOST_KEY = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]{16,}={0,2}")
_DNS_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_SHOWN = 60


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """repr() of a value, cut to about `limit` characters: errors echo input, never all of it."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def is_host_address(value: object) -> bool:
    """An IP address or a DNS name (letters, digits, hyphens; never a leading hyphen)."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    labels = value.removesuffix(".").split(".")
    return all(_DNS_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def is_port(value: object) -> bool:
    """An int 1..65535 (JSON's true is an int to Python, and "22" or 22.0 are not ports)."""
    return type(value) is int and 1 <= value <= 65535

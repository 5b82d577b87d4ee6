"""Secrets never reach a screen, a report or a log: mask them wherever output is shown."""

from __future__ import annotations

import re

_PATTERNS = [
    # JSON credential documents (IMDS, STS): keep the key name, hide the value
    (re.compile(r'("(?:SecretAccessKey|Token|SessionToken)"\s*:\s*")[^"]+(")'), r"\1****\2"),
    # shared credentials / config files and `aws configure` lines
    (re.compile(r"(aws_secret_access_key\s*[=:\s]\s*)\S+", re.I), r"\1****"),
    (re.compile(r"(aws_session_token\s*[=:]\s*)\S+", re.I), r"\1****"),
    # access key ids: the first four characters tell the kind (AKIA long-term, ASIA temporary)
    (re.compile(r"\b((?:AKIA|ASIA)[A-Z0-9]{4})[A-Z0-9]{8,}\b"), r"\1…"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text

"""Text from hosts (stderr, command output) reaches a person's terminal: only as text.

A host could print ESC]52 (write the clipboard), ESC[2J (clear the screen) or a carriage
return that overwrites a line. Reports for people drop control characters but newlines
and tabs; the JSON report keeps the raw text, which json.dumps escapes.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    return _CONTROL.sub("", text)

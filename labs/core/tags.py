"""Tags on every taggable resource: what sweep finds, and what a bill shows."""

from __future__ import annotations

LAB_TAG = "lab"
LAB_TAG_VALUE = "rolelab"


def lab_tags(stack: str, student: str | None = None, name: str | None = None) -> dict[str, str]:
    tags = {LAB_TAG: LAB_TAG_VALUE, "stack": stack, "student": student or "shared"}
    if name:
        tags["Name"] = name
    return tags


# Exercise mode: a student's console user carries the student it belongs to and the role name the
# lesson asks that student for; the lab cloud scopes the user's requests by them.
CONSOLE_TAG = "rolelab-console"
PREFIX_TAG = "rolelab-role-prefix"

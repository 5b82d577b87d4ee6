"""The lesson's drills as data: which console action, which checks watch the hosts react,
which confirm the restore, and which operator-side facts are asserted.

Running them is labs.app.drills: for each student, confirm the lab is as declared, act,
watch the checks derived from the state after the action, restore, confirm the restore.
"""

from __future__ import annotations

from dataclasses import dataclass

from labs.lesson.actions import ATTACH_ROLE, DETACH_POLICY, SECOND_ASSOCIATION, Action


@dataclass(frozen=True)
class Drill:
    name: str
    why: str  # one line: what the drill shows
    action: Action | None  # None: a drill with its own steps (bad-practice)
    watch: tuple[str, ...] = ()  # check ids on the hosts the action changed
    restored: tuple[str, ...] = ()  # check ids on the same hosts once the action is undone
    confirm: tuple[str, ...] = ()  # operator-side facts: "same-instance", "one-association"
    real_key: bool = False  # puts a real access key on a host: aws mode asks for --i-understand


DRILLS: dict[str, Drill] = {d.name: d for d in (
    Drill("attach-role", "Modify IAM role on the running no-role instance: it starts working, with no restart.",
          ATTACH_ROLE, watch=("imds-credentials", "iam-list-users", "sts-caller-identity"),
          restored=("imds-credentials", "iam-list-users"), confirm=("same-instance",)),
    Drill("detach-policy", "Detach the policy from the role: AccessDenied after IAM propagates; re-attach restores it.",
          DETACH_POLICY, watch=("iam-list-users", "iam-list-roles"), restored=("iam-list-users",)),
    Drill("second-role", "One role per instance: a second instance-profile association is refused (IncorrectState).",
          SECOND_ASSOCIATION, confirm=("one-association",)),
    Drill("bad-practice", "Store a user's access key on an instance with aws configure, and see why roles exist.",
          None, real_key=True),
)}

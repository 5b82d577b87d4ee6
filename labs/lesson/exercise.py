"""Exercise mode, graded: the steps a student does, in the lesson's order, each done, todo or wrong.

Pure: `grade` takes what the operator read from the account and what the student's
with-role host answered over SSH (gathered by labs.app.check), and says, per step, what was
seen and the next action with its aws CLI line and the LAB.md part that explains it.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field

from labs.core.trust import trust_problem

DONE, TODO, WRONG = "done", "todo", "wrong"
BROAD = {"AdministratorAccess", "IAMFullAccess", "PowerUserAccess"}  # grants beyond a read-only lesson


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    part: str  # where docs/LAB.md explains it


STEPS: tuple[Step, ...] = (
    Step("role-exists", "a role for the EC2 service exists", "Part E1"),
    Step("role-trust", "the role trusts ec2.amazonaws.com", "Part E1"),
    Step("role-policy", "the lesson's policy is attached, nothing broader", "Part E2"),
    Step("instance-profile", "an instance profile holds the role", "Part E3"),
    Step("profile-associated", "the profile is attached to the running with-role instance", "Part E4"),
    Step("list-users-works", "aws iam list-users works on the with-role host", "Part E5"),
    Step("create-user-denied", "aws iam create-user is AccessDenied there", "Part E5"),
    Step("nothing-stored", "no access key is stored on the host", "Part E6"),
)


@dataclass
class Seen:
    """One student's slice of the account and of their with-role host, as read now."""

    role: str  # the role the student must make (roleName, or roleName-student in a class)
    policies: tuple[str, ...]  # the ARNs the lesson attaches
    instance_id: str  # the with-role host, as provisioned
    role_exists: bool = False
    trust_document: object = None
    attached: tuple[str, ...] = ()
    inline: dict[str, object] = field(default_factory=dict)  # inline policy name -> document
    profiles: tuple[str, ...] = ()  # instance profiles holding the role
    associated: str | None = None  # the profile associated with the with-role instance
    elsewhere: tuple[str, ...] = ()  # other instances of the student that carry one of the role's profiles
    list_users: str = ""  # Success / NoCredentials / AccessDenied / unreachable
    create_user: str = ""
    user_created: bool = False
    stored: str = ""  # "nothing stored" or "stored: ..."


@dataclass(frozen=True)
class StepResult:
    id: str
    status: str
    observed: str
    hint: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "observed": self.observed, "hint": self.hint}


def _hint(step: str, action: str, cli: str) -> str:
    part = next(s.part for s in STEPS if s.id == step)
    return f"{action}: {cli} (docs/LAB.md {part})"


def _wildcard(document: object) -> bool:
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    listed = document.get("Statement", []) if isinstance(document, dict) else []
    for statement in [listed] if isinstance(listed, dict) else listed:
        actions = statement.get("Action", [])
        if statement.get("Effect") == "Allow" and "*" in ([actions] if isinstance(actions, str) else actions):
            return True
    return False


def grade(seen: Seen) -> list[StepResult]:
    role, instance = seen.role, seen.instance_id
    policy = seen.policies[0] if seen.policies else "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
    results: list[StepResult] = []
    add = lambda *a: results.append(StepResult(*a))  # noqa: E731

    if seen.role_exists:
        add("role-exists", DONE, f"role {role} exists")
    else:
        add("role-exists", TODO, f"no role {role}", _hint(
            "role-exists", "create the role for EC2",
            f"aws iam create-role --role-name {role} --assume-role-policy-document file://trust-ec2.json"))

    problem = trust_problem(seen.trust_document) if seen.role_exists else "no role yet"
    if not seen.role_exists:
        add("role-trust", TODO, problem, "create the role first (role-exists)")
    elif problem:
        add("role-trust", WRONG, problem, _hint(
            "role-trust", "let EC2 assume it",
            f"aws iam update-assume-role-policy --role-name {role} --policy-document file://trust-ec2.json"))
    else:
        add("role-trust", DONE, "trusts ec2.amazonaws.com")

    names = [a.rsplit("/", 1)[-1] for a in seen.attached]
    broad = sorted(set(names) & BROAD) + [f"inline {n} (*)" for n, d in seen.inline.items() if _wildcard(d)]
    missing = [p for p in seen.policies if p not in seen.attached]
    if broad:
        add("role-policy", WRONG, f"broader than the lesson: {', '.join(broad)}", _hint(
            "role-policy", "least privilege: detach it and attach the lesson's policy",
            f"aws iam detach-role-policy --role-name {role} --policy-arn arn:aws:iam::aws:policy/{broad[0]}"
            if not broad[0].startswith("inline") else f"aws iam delete-role-policy --role-name {role} "
            f"--policy-name {broad[0].split()[1]}"))
    elif not seen.role_exists or missing:
        add("role-policy", TODO, f"attached: {', '.join(names) or 'none'}", _hint(
            "role-policy", "attach the lesson's policy",
            f"aws iam attach-role-policy --role-name {role} --policy-arn {(missing or [policy])[0]}"))
    else:
        add("role-policy", DONE, f"attached: {', '.join(names)}")

    if seen.profiles:
        add("instance-profile", DONE, f"instance profile {seen.profiles[0]} holds {role}")
    else:
        add("instance-profile", TODO, f"no instance profile holds {role}", _hint(
            "instance-profile", "make an instance profile with the role",
            f"aws iam create-instance-profile --instance-profile-name {role} && aws iam add-role-to-instance-profile "
            f"--instance-profile-name {role} --role-name {role}"))

    if seen.associated and seen.associated in seen.profiles:
        add("profile-associated", DONE, f"{seen.associated} on {instance}")
    elif seen.elsewhere:
        add("profile-associated", WRONG, f"the role is on another instance ({', '.join(seen.elsewhere)}), not on "
            f"the running {instance}", _hint(
                "profile-associated", "the lesson attaches the role to the running instance: no new instance",
                f"aws ec2 associate-iam-instance-profile --instance-id {instance} "
                f"--iam-instance-profile Name={(seen.profiles or (role,))[0]}"))
    elif seen.associated:
        add("profile-associated", WRONG, f"{instance} has profile {seen.associated}, which does not hold {role}",
            _hint("profile-associated", "replace the association",
                  f"aws ec2 replace-iam-instance-profile-association --association-id ASSOCIATION "
                  f"--iam-instance-profile Name={(seen.profiles or (role,))[0]}"))
    else:
        add("profile-associated", TODO, f"no instance profile on {instance}", _hint(
            "profile-associated", "attach the role to the running instance (Modify IAM role)",
            f"aws ec2 associate-iam-instance-profile --instance-id {instance} "
            f"--iam-instance-profile Name={(seen.profiles or (role,))[0]}"))

    stored = seen.stored.startswith("stored")
    if stored:
        how = "works" if seen.list_users == "Success" else f"answers {seen.list_users}"
        add("list-users-works", WRONG, f"{how} with a stored access key, not the role", _hint(
            "nothing-stored", "remove the stored key; the role's credentials come from IMDS",
            "rm -rf ~/.aws/credentials (on the host)"))
    elif seen.list_users == "Success":
        add("list-users-works", DONE, "aws iam list-users: Success")
    else:
        add("list-users-works", TODO, f"aws iam list-users: {seen.list_users or 'not run'}", _hint(
            "list-users-works", "finish the steps above, then try it on the host",
            "rolelab ssh with-role -- aws iam list-users"))

    if seen.create_user == "AccessDenied" and not seen.user_created:
        add("create-user-denied", DONE, "aws iam create-user: AccessDenied")
    elif seen.create_user == "Success" or seen.user_created:
        add("create-user-denied", WRONG, "aws iam create-user succeeded: the role can write IAM", _hint(
            "create-user-denied", "least privilege: the role must not create users",
            f"aws iam list-attached-role-policies --role-name {role}"))
    else:
        add("create-user-denied", TODO, f"aws iam create-user: {seen.create_user or 'not run'}",
            "the role must reach the host first (profile-associated)")

    if stored:
        add("nothing-stored", WRONG, seen.stored, _hint(
            "nothing-stored", "never run aws configure on an instance; remove the key and delete it in IAM",
            "rm -rf ~/.aws (on the host) && aws iam delete-access-key --user-name USER --access-key-id KEY"))
    elif seen.stored == "nothing stored" and seen.list_users != "Success":
        # true from the start; it proves something once the role's credentials are what the CLI uses
        add("nothing-stored", TODO, "nothing stored yet; it counts once the role's credentials reach the host",
            "finish the steps above (list-users-works)")
    elif seen.stored == "nothing stored":
        add("nothing-stored", DONE, "nothing stored: the credentials come from the role")
    else:
        add("nothing-stored", TODO, seen.stored or "not looked at", "the host did not answer")
    return results

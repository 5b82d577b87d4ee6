"""`rolelab check`: grade each student's progress in the lesson, changing nothing.

Read-only API calls for the account's side (the role, its trust and policies, the instance
profile, the association) and the with-role host over SSH (pinned keys, as verify) for the
proof: `aws iam list-users`, `aws iam create-user`, and nothing stored. labs.lesson.exercise
turns what was seen into steps: done, todo or wrong, each with the next action.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from labs.core.awserrors import infra_errors
from labs.core.outputs import LabOutputs
from labs.lesson.account import associations
from labs.lesson.checks import derive_checks
from labs.lesson.exercise import DONE, STEPS, Seen, StepResult, grade
from labs.lesson.findings import Finding, Status
from labs.verify.runner import Verifier

HOST_CHECKS = ("iam-list-users", "iam-create-user", "nothing-stored")


@dataclass
class Progress:
    student: str
    steps: list[StepResult]
    unreachable: bool = False

    @property
    def done(self) -> int:
        return sum(s.status == DONE for s in self.steps)

    @property
    def complete(self) -> bool:
        return self.done == len(STEPS)

    def to_dict(self) -> dict:
        return {"student": self.student, "steps": [s.to_dict() for s in self.steps], "done": self.done,
                "total": len(STEPS)}


def read_account(operator, outputs: LabOutputs, student: str) -> Seen:
    role, policies = outputs.target(student)
    host = outputs.host("with-role", student)
    seen = Seen(role, policies, host.instance_id)
    iam, ec2 = operator("iam"), operator("ec2")
    with infra_errors(f"reading {student}'s progress"):
        try:
            found = iam.get_role(RoleName=role)["Role"]
        except iam.exceptions.NoSuchEntityException:
            found = None
        if found is not None:
            seen.role_exists, seen.trust_document = True, found.get("AssumeRolePolicyDocument", {})
            seen.attached = tuple(p["PolicyArn"] for p in
                                  iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"])
            seen.inline = {name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                           for name in iam.list_role_policies(RoleName=role)["PolicyNames"]}
            seen.profiles = tuple(p["InstanceProfileName"] for p in
                                  iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"])
        mine = associations(ec2, host.instance_id)
        seen.associated = mine[0]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] if mine else None
        every = ec2.describe_iam_instance_profile_associations().get("IamInstanceProfileAssociations", [])
        seen.elsewhere = tuple(a["InstanceId"] for a in every if a["InstanceId"] != host.instance_id
                               and a.get("State") in ("associating", "associated")
                               and a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] in seen.profiles)
    return seen


def observe_host(verifier: Verifier, outputs: LabOutputs, seen: Seen, student: str) -> list[Finding]:
    """The proof on the with-role host, judged as if it had the target role (what the lesson aims at)."""
    host = outputs.host("with-role", student)
    aimed = replace(host, role=seen.role, policies=seen.policies)
    checks = [replace(c, host=host, phase="check") for c in derive_checks(aimed, seen.policies, outputs.region) if c.id in HOST_CHECKS]
    found = verifier.run(checks)
    by_id = {f.check: f for f in found}
    seen.list_users = by_id["iam-list-users"].observed.split(";")[0]
    create = by_id["iam-create-user"].observed
    seen.create_user, seen.user_created = create.split(";")[0], "was created" in create
    seen.stored = by_id["nothing-stored"].observed
    return found


def check_students(operator, verifier: Verifier, outputs: LabOutputs, students: tuple[str, ...]) -> list[Progress]:
    graded = []
    for student in students:
        seen = read_account(operator, outputs, student)
        found = observe_host(verifier, outputs, seen, student)
        graded.append(Progress(student, grade(seen), any(f.status is Status.UNREACHABLE for f in found)))
    return graded

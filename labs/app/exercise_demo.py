"""`rolelab demo --exercise`: a student played end to end on an offline exercise lab.

It brings up an exercise lab, does each step of the lesson with the student's own console
credentials (the same calls the aws CLI lines in docs/LAB.md make), runs `check` after each
step, then makes the two classic mistakes (a trust policy for lambda.amazonaws.com; `aws
configure` with a user's key on the host), shows `check` catching each, and cleans up.
Every expectation is a finding, so its exit status is the report's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from labs.app.bad_practice import delete_users
from labs.app.check import check_students
from labs.core.outputs import LabOutputs
from labs.core.trust import EC2_TRUST
from labs.labcloud.client import ClientFactory
from labs.labcloud.paths import StackPaths
from labs.lesson.exercise import DONE, STEPS
from labs.lesson.findings import observation
from labs.provision import local
from labs.provision.consoles import read_console
from labs.provision.operator import operator_clients
from labs.report.model import Report
from labs.report.progress import Progress
from labs.verify.runner import Verifier

LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
READ_ONLY = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
PROPAGATION = 15.0  # seconds a change may take to reach the host's IMDS (local: at once)


def run_exercise_demo(values: Mapping[str, str], stack: str, region: str, progress: Progress) -> Report:
    report = Report(stack, "local")
    try:
        progress.say(f"== Exercise lab (stack {stack!r}): hosts only; the student makes the role")
        outputs = local.up({**values, "exercise": "true"}, stack=stack, region=region).outputs
        student = outputs.students()[0]
        console = read_console(StackPaths.for_stack(stack).root, outputs, student)
        aws = ClientFactory(console.endpoint, console.region, console.access_key_id, console.secret_access_key)
        operator = operator_clients(outputs)
        with Verifier(outputs, settle=0.0, operator=operator) as verifier:
            player = Player(outputs, student, aws, operator, verifier, progress, report)
            player.lesson()
            player.mistakes()
    finally:
        summary = local.down(stack)
        progress.say(f"\n== Cleaned up: {summary.describe()}")
    return report.finish()


def brief(statuses: dict[str, str]) -> str:
    """'3/8 done; todo: a, b' — short enough for a report row."""
    done = sum(v == DONE for v in statuses.values())
    rest = {}
    for step, status in statuses.items():
        if status != DONE:
            rest.setdefault(status, []).append(step)
    return "; ".join([f"{done}/{len(statuses)} done"] + [f"{s}: {', '.join(ids)}" for s, ids in rest.items()])


class Player:
    def __init__(self, outputs: LabOutputs, student: str, aws, operator, verifier: Verifier, progress: Progress,
                 report: Report):
        self.outputs, self.student, self.aws, self.operator = outputs, student, aws, operator
        self.verifier, self.progress, self.report = verifier, progress, report
        self.role, self.policies = outputs.target(student)
        self.host = outputs.host("with-role", student)

    def grade(self, phase: str, expect: dict[str, str], wait: float = 0.0) -> dict[str, str]:
        """Run check (again, while the host catches up) until it shows `expect` or the wait is over."""
        deadline = time.monotonic() + wait
        while True:
            [graded] = check_students(self.operator, self.verifier, self.outputs, (self.student,))
            seen = {s.id: s.status for s in graded.steps}
            if all(seen[k] == v for k, v in expect.items()) or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        line = " ".join(f"{s.id}={s.status}" for s in graded.steps)
        self.progress.say(f"   check: {graded.done}/{len(STEPS)} done  {line}")
        observed, wanted = brief({k: seen[k] for k in expect}), brief(expect)
        self.report.add([observation(phase, self.host, "check", "rolelab check", wanted, observed)])
        return seen

    def step(self, says: str, cli: str, call) -> None:
        self.progress.say(f"\n-- {says}\n   $ {cli}")
        call()

    def lesson(self) -> None:
        iam, ec2, role = self.aws("iam"), self.aws("ec2"), self.role
        upto = lambda n: {s.id: DONE if i < n else "todo" for i, s in enumerate(STEPS)}  # noqa: E731
        self.grade("exercise 0: nothing done", upto(0))
        self.step("Create the role for the EC2 service", f"aws iam create-role --role-name {role} "
                  "--assume-role-policy-document file://trust-ec2.json",
                  lambda: iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(EC2_TRUST)))
        self.grade("exercise 1: role", upto(2))
        for arn in self.policies:
            self.step("Attach the lesson's policy", f"aws iam attach-role-policy --role-name {role} --policy-arn {arn}",
                      lambda arn=arn: iam.attach_role_policy(RoleName=role, PolicyArn=arn))
        self.grade("exercise 2: policy", upto(3))
        self.step("Make an instance profile holding the role", f"aws iam create-instance-profile "
                  f"--instance-profile-name {role} && aws iam add-role-to-instance-profile --instance-profile-name "
                  f"{role} --role-name {role}",
                  lambda: (iam.create_instance_profile(InstanceProfileName=role),
                           iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)))
        self.grade("exercise 3: profile", upto(4))
        self.step("Attach it to the running with-role instance (Modify IAM role)",
                  f"aws ec2 associate-iam-instance-profile --instance-id {self.host.instance_id} "
                  f"--iam-instance-profile Name={role}",
                  lambda: ec2.associate_iam_instance_profile(InstanceId=self.host.instance_id,
                                                             IamInstanceProfile={"Name": role}))
        self.grade("exercise 4: attached, and the host proves it", upto(len(STEPS)), wait=PROPAGATION)

    def mistakes(self) -> None:
        iam, role = self.aws("iam"), self.role
        self.step("Mistake 1: a trust policy for lambda.amazonaws.com",
                  f"aws iam update-assume-role-policy --role-name {role} --policy-document file://trust-lambda.json",
                  lambda: iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(LAMBDA_TRUST)))
        self.grade("mistake 1: lambda trust", {"role-trust": "wrong", "list-users-works": "todo"}, wait=PROPAGATION)
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(EC2_TRUST))
        self.grade("mistake 1: trust put back", {"role-trust": DONE, "list-users-works": DONE}, wait=PROPAGATION)
        user = f"rolelab-exercise-{self.student}"[:64]
        admin = self.operator("iam")  # a student console cannot make users: the operator plays the "colleague"
        session = self.verifier.session(self.host)
        try:
            admin.create_user(UserName=user, Tags=[{"Key": "lab", "Value": "rolelab"},
                                                   {"Key": "stack", "Value": self.outputs.stack}])
            admin.attach_user_policy(UserName=user, PolicyArn=self.policies[0] if self.policies else READ_ONLY)
            key = admin.create_access_key(UserName=user)["AccessKey"]  # so list-users works, for the wrong reason
            self.progress.say("\n-- Mistake 2: aws configure with a user's access key on the instance\n"
                              "   $ aws configure   (the key goes in through stdin)")
            session.run("aws configure", stdin=f"{key['AccessKeyId']}\n{key['SecretAccessKey']}\n"
                                               f"{self.outputs.region}\njson\n")
            self.grade("mistake 2: stored key", {"nothing-stored": "wrong", "list-users-works": "wrong"})
        finally:
            delete_users(admin, (user,))
            session.run("rm -rf ~/.aws")
        self.grade("mistake 2: key removed", {"nothing-stored": DONE, "list-users-works": DONE})

"""Exercise mode on the offline lab, through the real aws CLI and real SSH: a student does the lesson
with their own console, `rolelab check` grades each step, and each classic mistake is caught."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs.cli.main import main
from labs.core.outputs import LabOutputs
from labs.labcloud.paths import StackPaths
from labs.lesson.exercise import STEPS
from labs.program.policies import SUPPORTED
from labs.provision.consoles import read_console
from labs.provision.operator import operator_clients
from tests.offline.browser import open_page
from tests.offline.conftest import ssh, stack_up

STACK = "exercise"
READ_ONLY = SUPPORTED["IAMReadOnlyAccess"].arn
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module")
def lab() -> Iterator[LabOutputs]:
    with stack_up(STACK, {"exercise": "true", "students": "3"}) as outputs:
        yield outputs


def console_aws(lab: LabOutputs, student: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real aws CLI with the environment `rolelab env` prints: what a student types."""
    console = read_console(StackPaths.for_stack(STACK).root, lab, student)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(console.environment())
    done = subprocess.run(["aws", *argv, "--output", "json"], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def graded(capsys, student: str) -> dict[str, str]:
    code = main(["check", "--local", "--stack", STACK, "--student", student, "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert report["student"] == student and report["total"] == len(STEPS)
    statuses = {s["id"]: s["status"] for s in report["steps"]}
    assert code == (0 if set(statuses.values()) == {"done"} else 1), (code, report)
    return statuses


def make_role(lab: LabOutputs, student: str, trust_document: dict, policy: str, tmp_path: Path) -> str:
    """What a student types for E1 to E3: the role with this trust and policy, and its instance profile."""
    role = f"DemoRoleForEC2-{student}"
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(trust_document))
    console_aws(lab, student, "iam", "create-role", "--role-name", role, "--assume-role-policy-document",
                f"file://{trust}")
    console_aws(lab, student, "iam", "attach-role-policy", "--role-name", role, "--policy-arn", policy)
    console_aws(lab, student, "iam", "create-instance-profile", "--instance-profile-name", role)
    console_aws(lab, student, "iam", "add-role-to-instance-profile", "--instance-profile-name", role,
                "--role-name", role)
    return role


def done_so_far(count: int) -> dict[str, str]:
    return {step.id: "done" if i < count else "todo" for i, step in enumerate(STEPS)}


def test_every_host_starts_without_a_role_and_the_console_is_a_sandbox(lab, tmp_path):
    assert lab.exercise and all(h.role is None for h in lab.hosts)
    denied = console_aws(lab, "student01", "iam", "create-user", "--user-name", "sneaky", check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr
    denied = console_aws(lab, "student01", "iam", "create-access-key", "--user-name", "rolelab-operator", check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr
    # another student's instance is out of reach, on the request path
    other = lab.host("with-role", "student02").instance_id
    refused = console_aws(lab, "student01", "ec2", "associate-iam-instance-profile", "--instance-id", other,
                          "--iam-instance-profile", "Name=DemoRoleForEC2-student01", check=False)
    assert refused.returncode != 0 and "UnauthorizedOperation" in refused.stderr, refused.stderr
    # `rolelab env` prints exactly what those calls used
    assert main(["env", "--local", "--stack", STACK, "--student", "student01"]) == 0


def test_a_student_walks_the_lesson_and_check_follows_every_step(lab, capsys, tmp_path):
    student, role = "student01", "DemoRoleForEC2-student01"
    instance = lab.host("with-role", student).instance_id
    trust = tmp_path / "trust-ec2.json"
    trust.write_text(json.dumps(TRUST))
    assert graded(capsys, student) == done_so_far(0)
    console_aws(lab, student, "iam", "create-role", "--role-name", role, "--assume-role-policy-document",
                f"file://{trust}")
    assert graded(capsys, student) == done_so_far(2)
    console_aws(lab, student, "iam", "attach-role-policy", "--role-name", role, "--policy-arn", READ_ONLY)
    assert graded(capsys, student) == done_so_far(3)
    console_aws(lab, student, "iam", "create-instance-profile", "--instance-profile-name", role)
    console_aws(lab, student, "iam", "add-role-to-instance-profile", "--instance-profile-name", role,
                "--role-name", role)
    assert graded(capsys, student) == done_so_far(4)
    console_aws(lab, student, "ec2", "associate-iam-instance-profile", "--instance-id", instance,
                "--iam-instance-profile", f"Name={role}")
    deadline = time.monotonic() + 15
    while (statuses := graded(capsys, student)) != done_so_far(len(STEPS)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert statuses == done_so_far(len(STEPS))
    assert main(["check", "--local", "--stack", STACK, "--student", student, "--watch", "1", "-q"]) == 0, \
        "--watch stops by itself when every step is done"
    capsys.readouterr()


def test_a_trust_policy_for_lambda_gives_the_host_no_credentials(lab, capsys, tmp_path):
    student = "student02"
    host = lab.host("with-role", student)
    role = make_role(lab, student, LAMBDA_TRUST, READ_ONLY, tmp_path)
    console_aws(lab, student, "ec2", "associate-iam-instance-profile", "--instance-id", host.instance_id,
                "--iam-instance-profile", f"Name={role}")
    statuses = graded(capsys, student)
    assert statuses["role-trust"] == "wrong" and statuses["list-users-works"] == "todo"
    # what AWS shows: IMDS serves AssumeRoleUnauthorizedAccess, and the real aws CLI finds no credentials
    listing = ssh(lab, host, "aws iam list-users")
    assert listing.returncode != 0 and "Unable to locate credentials" in listing.stderr, listing.stderr
    document = ssh(lab, host, f"T=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
                              f"{host.imds_endpoint}/latest/api/token); curl -s -H \"X-aws-ec2-metadata-token: $T\" "
                              f"{host.imds_endpoint}/latest/meta-data/iam/security-credentials/{role}").stdout
    assert json.loads(document)["Code"] == "AssumeRoleUnauthorizedAccess" and "AccessKeyId" not in document


def test_admin_instead_of_read_only_and_a_new_instance_are_wrong(lab, capsys, tmp_path):
    student = "student03"
    role = make_role(lab, student, TRUST, ADMIN, tmp_path)
    # a new instance with the role, instead of attaching it to the running one (made by the operator here)
    ec2 = operator_clients(lab)("ec2")
    running = ec2.describe_instances(InstanceIds=[lab.host("with-role", student).instance_id])
    image = running["Reservations"][0]["Instances"][0]["ImageId"]
    new = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                            IamInstanceProfile={"Name": role},
                            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                {"Key": "student", "Value": student}]}])["Instances"][0]["InstanceId"]
    try:
        statuses = graded(capsys, student)
        assert statuses["role-policy"] == "wrong" and statuses["profile-associated"] == "wrong", statuses
        code = main(["check", "--local", "--stack", STACK, "--student", student, "-q"])
        text = capsys.readouterr().out
        assert code == 1 and "broader than the lesson: AdministratorAccess" in text
        assert f"another instance ({new})" in text
    finally:
        ec2.terminate_instances(InstanceIds=[new])


def test_an_access_key_stored_on_the_host_is_caught(lab, capsys):
    student = "student01"  # done with the lesson: a stored key makes it work for the wrong reason
    host = lab.host("with-role", student)
    ssh(lab, host, "mkdir -p ~/.aws && printf '[default]\\naws_access_key_id = AKIAEXAMPLE\\n"
                   "aws_secret_access_key = x\\n' > ~/.aws/credentials")
    try:
        statuses = graded(capsys, student)
        assert statuses["nothing-stored"] == "wrong" and statuses["list-users-works"] != "done", statuses
    finally:
        ssh(lab, host, "rm -rf ~/.aws")


def test_the_class_grid_in_json_and_in_the_page(lab, capsys, tmp_path, artifacts_dir):
    page = tmp_path / "progress.html"
    code = main(["check", "--local", "--stack", STACK, "--json", "-q", "--html", str(page)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and [r["student"] for r in report] == ["student01", "student02", "student03"]
    done = {r["student"]: r["done"] for r in report}
    assert done["student01"] == len(STEPS) and done["student02"] < len(STEPS)
    html = page.read_text()
    assert "<script" not in html
    with open_page(page) as browser:
        rows = browser.locator("table.progress tbody tr")
        order = [rows.nth(i).get_attribute("data-student") for i in range(rows.count())]
        assert order[-1] == "student01", "students who need help come first"
        wrong = browser.locator('tr[data-student="student02"] td[data-step="role-trust"]')
        assert wrong.get_attribute("data-status") == "wrong"
        browser.screenshot(path=str(Path(artifacts_dir) / "exercise-progress.png"), full_page=True)


def test_demo_exercise_plays_a_student_and_catches_both_mistakes(capsys):
    code = main(["demo", "--exercise", "--json", "--stack", "demo-ex", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, [r for r in report["results"] if r["status"] != "pass"]
    phases = [r["phase"] for r in report["results"]]
    assert phases[0] == "exercise 0: nothing done" and "exercise 4: attached, and the host proves it" in phases
    assert {"mistake 1: lambda trust", "mistake 2: stored key", "mistake 2: key removed"} <= set(phases)
    assert not StackPaths.for_stack("demo-ex").root.exists(), "the demo takes its lab down"

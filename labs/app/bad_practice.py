"""The anti-pattern, shown safely: `aws configure` with a user's access key on an instance.

An IAM user gets an access key; the key goes onto the no-role host with `aws configure`
(through stdin, so it is never on a command line or in a report). Then the lesson: the
key sits in plain text in ~/.aws/credentials, root (and any process of the user) can read
it, and the host now has the user's full power, for as long as the key lives.

The key and the users are deleted first, in their own `finally`, from the operator's side:
a host that drops its SSH connection cannot keep a live key. The host's ~/.aws is cleaned
afterwards, best effort. Both users carry the lab's tags, so `sweep` finds any leftover,
and a leftover from an interrupted run is removed before the drill starts (idempotent).
aws mode needs --i-understand.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from labs.core.awserrors import infra_errors
from labs.core.errors import InfraError
from labs.core.tags import lab_tags
from labs.lesson.checks import Check, caller_identity, finding
from labs.lesson.classify import classify
from labs.lesson.findings import judge

if TYPE_CHECKING:
    from labs.app.sequence import LabRun

log = logging.getLogger("rolelab.bad_practice")
PHASE = "bad-practice"
POWER_POLICY = "arn:aws:iam::aws:policy/IAMFullAccess"  # enough to create users: "full power" over IAM
READ_AS_ROOT = ('if [ "$(id -u)" = 0 ]; then cat ~/.aws/credentials; '
                'else sudo -n cat ~/.aws/credentials; fi 2>&1')


def user_names(student: str) -> tuple[str, str]:
    """(the user whose key goes on the host, the user the host then creates with it)."""
    user = f"rolelab-bad-practice-{student}"[:64]
    return user, f"{user}-proof"[:64]


def bad_practice(run: LabRun, students: tuple[str, ...]) -> None:
    for student in students:
        host = run.outputs.host("no-role", student)
        user, proof = user_names(student)
        tags = lab_tags(run.outputs.stack, student)
        with infra_errors(f"bad-practice on {student}"):
            delete_users(run.operator("iam"), (proof, user))  # a leftover of an interrupted run
        try:
            try:
                key_id, secret = _make_user_with_key(run, user, tags)
                run.note(f"{host.label}: made IAM user {user} (IAMFullAccess) and an access key {key_id[:4]}…")
                _show_the_danger(run, host, key_id, secret, user, proof, tags)
            finally:
                with infra_errors(f"deleting {user}"):
                    delete_users(run.operator("iam"), (proof, user))
        finally:
            _clean_host(run, host)
        run.note(f"{host.label}: deleted the key, the users and ~/.aws again")


def _make_user_with_key(run: LabRun, user: str, tags: dict[str, str]) -> tuple[str, str]:
    iam = run.operator("iam")
    with infra_errors(f"creating {user}"):
        iam.create_user(UserName=user, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        iam.attach_user_policy(UserName=user, PolicyArn=POWER_POLICY)
        key = iam.create_access_key(UserName=user)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _show_the_danger(run: LabRun, host, key_id: str, secret: str, user: str, proof: str,
                     tags: dict[str, str]) -> None:
    session = run.verifier.session(host)
    session.run("aws configure", stdin=f"{key_id}\n{secret}\n{run.outputs.region}\njson\n")
    run.note(f"{host.label}: ran `aws configure` with that key (the anti-pattern)")
    tag_args = " ".join(f"Key={k},Value={v}" for k, v in tags.items())
    steps = [
        ("key-in-plain-text", "cat ~/.aws/credentials", "cat ~/.aws/credentials", "secret key in plain text",
         lambda r: "secret key in plain text" if secret in r.stdout else "not found"),
        ("readable-by-root", "root reads ~/.aws/credentials", READ_AS_ROOT, "readable by root",
         lambda r: "readable by root" if key_id in r.stdout else "not readable"),
        ("identity-is-the-user", "aws sts get-caller-identity", "aws sts get-caller-identity --output json",
         f"user/{user}", caller_identity),
        ("has-the-users-power", f"aws iam create-user --user-name {proof}",
         f"aws iam create-user --user-name {proof} --tags {tag_args} --output json", "Success",
         lambda r: str(classify(r))),
    ]
    for check_id, title, command, expected, evaluate in steps:
        result = session.run(command)
        observed = evaluate(result)
        check = Check(check_id, host, title, command, expected, evaluate=evaluate, phase=PHASE)
        run.record(finding(check, judge(expected, observed), observed, 1, result.seconds, evidence=result.redacted()))
    run.note(f"{host.label}: the key on the host let it create IAM user {proof}")


def delete_users(iam, names: tuple[str, ...]) -> None:
    """Keys, policies, then the user; a user that is not there is fine."""
    for name in names:
        try:
            for attached in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
                iam.detach_user_policy(UserName=name, PolicyArn=attached["PolicyArn"])
            for access in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=name, AccessKeyId=access["AccessKeyId"])
            iam.delete_user(UserName=name)
        except iam.exceptions.NoSuchEntityException:
            continue


def _clean_host(run: LabRun, host) -> None:
    """Best effort: the key is already dead, so a host that is gone only leaves a useless file."""
    try:
        run.verifier.session(host).run("rm -rf ~/.aws")
    except InfraError as error:
        run.note(f"{host.label}: could not remove ~/.aws ({error}); the key in it is already deleted")

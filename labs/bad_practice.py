"""The anti-pattern, shown safely: `aws configure` with a user's access key on an instance.

An IAM user gets an access key; the key goes onto the no-role host with `aws configure`
(through stdin, so it is never on a command line or in a report). Then the lesson: the
key sits in plain text in ~/.aws/credentials, root (and any process of the user) can read
it, and the host now has the user's full power, for as long as the key lives. A finally
block deletes the key, the file and the user. aws mode needs --i-understand.
"""

from __future__ import annotations

from labs.drills import DrillContext
from labs.tags import lab_tags
from labs.verify.checks import Check, caller_identity
from labs.verify.classify import classify

POWER_POLICY = "arn:aws:iam::aws:policy/IAMFullAccess"  # enough to create users: "full power" over IAM
READ_AS_ROOT = ('if [ "$(id -u)" = 0 ]; then cat ~/.aws/credentials; '
                'else sudo -n cat ~/.aws/credentials; fi 2>&1')


def _user(student: str) -> str:
    return f"rolelab-bad-practice-{student}"[:64]


def _check(host, check_id: str, title: str, expected: str, evaluate) -> Check:
    return Check(check_id, host, title, title, expected, evaluate=evaluate, phase="bad-practice")


def bad_practice(ctx: DrillContext, students: tuple[str, ...]) -> None:
    """Store a user's access key on an instance with aws configure, and see why roles exist."""
    iam = ctx.operator("iam")
    for student in students:
        host = ctx.outputs.host("no-role", student)
        user = _user(student)
        proof = f"{user}-proof"[:64]
        session = ctx.verifier.session(host)
        key_id = ""
        try:
            iam.create_user(UserName=user, Tags=[{"Key": k, "Value": v}
                                                 for k, v in lab_tags(ctx.outputs.stack, student).items()])
            iam.attach_user_policy(UserName=user, PolicyArn=POWER_POLICY)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
            ctx.note(f"{host.label}: made IAM user {user} (IAMFullAccess) and an access key {key_id[:4]}…")
            session.run("aws configure", stdin=f"{key_id}\n{secret}\n{ctx.outputs.region}\njson\n")
            ctx.note(f"{host.label}: ran `aws configure` with that key (the anti-pattern)")

            plain = session.run("cat ~/.aws/credentials")
            ctx.run_evaluated(_check(host, "key-in-plain-text", "cat ~/.aws/credentials",
                                     "secret key in plain text", lambda r: (
                                         "secret key in plain text" if secret in r.stdout else "not found")), plain)
            readable = session.run(READ_AS_ROOT)
            ctx.run_evaluated(_check(host, "readable-by-root", "root reads ~/.aws/credentials",
                                     "readable by root", lambda r: (
                                         "readable by root" if key_id in r.stdout else "not readable")), readable)
            identity = session.run("aws sts get-caller-identity --output json")
            ctx.run_evaluated(_check(host, "identity-is-the-user", "aws sts get-caller-identity",
                                     f"user/{user}", caller_identity), identity)
            power = session.run(f"aws iam create-user --user-name {proof} --output json")
            ctx.run_evaluated(_check(host, "has-the-users-power", f"aws iam create-user --user-name {proof}",
                                     "Success", lambda r: str(classify(r))), power)
            ctx.note(f"{host.label}: the stolen-able key let the host create IAM user {proof}")
        finally:
            _clean(ctx, session, user, proof, key_id)
        ctx.note(f"{host.label}: deleted the key, ~/.aws and the users again")


def _clean(ctx: DrillContext, session, user: str, proof: str, key_id: str) -> None:
    iam = ctx.operator("iam")
    session.run("rm -rf ~/.aws")
    for name in (proof, user):
        try:
            for attached in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
                iam.detach_user_policy(UserName=name, PolicyArn=attached["PolicyArn"])
            for access in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=name, AccessKeyId=access["AccessKeyId"])
            iam.delete_user(UserName=name)
        except iam.exceptions.NoSuchEntityException:
            continue



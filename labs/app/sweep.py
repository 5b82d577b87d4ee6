"""`rolelab sweep`: delete what the lab left behind, found by its tag (lab=rolelab) and nothing else.

For the day a `pulumi destroy` was interrupted and the state no longer knows what exists.
Only resources carrying the lab's tag are listed or touched: EC2 through server-side tag
filters, IAM by reading each resource's tags, and every candidate is checked again here, so a
filter a backend ignores cannot widen the sweep. A dry run is the default; deleting needs
--yes and the account id typed back.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import tenacity
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from labs.core.awserrors import infra_errors
from labs.core.clients import Clients
from labs.core.errors import ExitStatus, InfraError, UsageError
from labs.core.tags import LAB_TAG, LAB_TAG_VALUE

# Deletion order: whatever uses a thing goes before the thing.
KINDS: dict[str, str] = {
    "instance": "instances (terminated, then awaited)",
    "security-group": "security groups",
    "key-pair": "key pairs",
    "profile-role": "roles removed from instance profiles",
    "instance-profile": "instance profiles",
    "managed-policy": "managed policies detached from roles",
    "inline-policy": "inline policies deleted from roles",
    "role": "roles",
    "access-key": "access keys deleted from users",
    "login-profile": "console passwords (login profiles) deleted from users",
    "user-managed-policy": "managed policies detached from users",
    "user-inline-policy": "inline policies deleted from users",
    "user": "IAM users (e.g. a bad-practice drill's, left by an interrupted run)",
}
# Error codes that mean "already gone": a second sweep, or a destroy that got further than we knew.
GONE = {"InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidKeyPair.NotFound", "NoSuchEntity"}
LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]  # i.e. not yet terminated
GROUP_RETRY_BUDGET = 120.0  # seconds: AWS lets go of a terminated instance's group a little later (pulumi waits too)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Resource:
    kind: str  # a key of KINDS
    id: str  # what the delete call names: instance id, group id, key name, profile/role/policy name or arn
    parent: str = ""  # the profile or role a membership / attachment belongs to
    label: str = ""  # for people: the Name tag, the instance state

    @property
    def short(self) -> str:
        return f"{self.id} from {self.parent}" if self.parent else self.id

    def __str__(self) -> str:
        return self.short + (f"  ({self.label})" if self.label else "")


@dataclass
class SweepPlan:
    account: str
    region: str
    stack: str | None
    resources: list[Resource]
    warnings: list[str] = field(default_factory=list)  # what was found but left alone, and why

    def of(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]

    def render(self) -> str:
        scope = f"{LAB_TAG}={LAB_TAG_VALUE}" + (f", stack={self.stack}" if self.stack else "")
        lines = [f"sweep of AWS account {self.account}, EC2 in {self.region}, IAM account-wide; tagged {scope}"]
        lines.extend(f"  WARNING: {w}" for w in self.warnings)
        if not self.resources:
            return "\n".join(lines + ["  nothing to sweep"])
        for kind, title in KINDS.items():
            mine = self.of(kind)
            if mine:
                lines.append(f"  {title}: {len(mine)}")
                lines.extend(f"    {r}" for r in mine)
        return "\n".join(lines)


@dataclass
class SweepResult:
    deleted: list[Resource] = field(default_factory=list)
    gone: list[Resource] = field(default_factory=list)  # already absent: not an error
    failed: list[tuple[Resource, str]] = field(default_factory=list)
    seconds: float = 0.0

    def render(self) -> str:
        lines = [f"  deleted       {r.kind:<16} {r.short}" for r in self.deleted]
        lines += [f"  already gone  {r.kind:<16} {r.short}" for r in self.gone]
        lines += [f"  FAILED        {r.kind:<16} {r.short}: {why}" for r, why in self.failed]
        lines.append(f"sweep: {len(self.deleted)} deleted, {len(self.gone)} already gone, "
                     f"{len(self.failed)} failed in {self.seconds:.1f} s")
        return "\n".join(lines)


# -- finding ---------------------------------------------------------------------------------------


def _wanted(stack: str | None) -> dict[str, str]:
    return {LAB_TAG: LAB_TAG_VALUE, **({"stack": stack} if stack else {})}


def _is_lab(tags: list[dict] | None, wanted: dict[str, str]) -> bool:
    have = {t["Key"]: t["Value"] for t in tags or []}
    return all(have.get(key) == value for key, value in wanted.items())


def _name(tags: list[dict] | None) -> str:
    return next((t["Value"] for t in tags or [] if t["Key"] == "Name"), "")


def _ec2_filters(wanted: dict[str, str]) -> list[dict]:
    return [{"Name": f"tag:{key}", "Values": [value]} for key, value in wanted.items()]


def _ec2(ec2, wanted: dict[str, str]) -> Iterator[Resource]:
    filters = _ec2_filters(wanted)
    states = [{"Name": "instance-state-name", "Values": LIVE_STATES}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters + states):
        for reservation in page["Reservations"]:
            for i in reservation["Instances"]:
                if _is_lab(i.get("Tags"), wanted):
                    yield Resource("instance", i["InstanceId"], label=f"{_name(i.get('Tags'))}, {i['State']['Name']}")
    for page in ec2.get_paginator("describe_security_groups").paginate(Filters=filters):
        for group in page["SecurityGroups"]:
            if _is_lab(group.get("Tags"), wanted):
                yield Resource("security-group", group["GroupId"], label=group["GroupName"])
    for pair in ec2.describe_key_pairs(Filters=filters)["KeyPairs"]:  # not paginated by the API
        if _is_lab(pair.get("Tags"), wanted):
            yield Resource("key-pair", pair["KeyName"])


def _get_or_none(call: Callable[[], dict]) -> dict | None:
    """A resource deleted between list and get (a destroy still running) is simply not there."""
    try:
        return call()
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchEntity":
            return None
        raise


def _profile_users(ec2, wanted: dict[str, str]) -> dict[str, list[tuple[str, bool]]]:
    """Instance profile name -> the live instances using it, each with whether it is the lab's."""
    users: dict[str, list[tuple[str, bool]]] = {}
    states = [{"Name": "instance-state-name", "Values": LIVE_STATES}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=states):
        for reservation in page["Reservations"]:
            for i in reservation["Instances"]:
                arn = i.get("IamInstanceProfile", {}).get("Arn")
                if arn:
                    users.setdefault(arn.rsplit("/", 1)[-1], []).append((i["InstanceId"], _is_lab(i.get("Tags"), wanted)))
    return users


def _iam(iam, wanted: dict[str, str], profile_users: dict[str, list[tuple[str, bool]]],
         warnings: list[str]) -> Iterator[Resource]:
    # IAM's list calls return no tags; get_* does (moto lacks ListInstanceProfileTags).
    kept_roles: set[str] = set()
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for listed in page["InstanceProfiles"]:
            name = listed["InstanceProfileName"]
            got = _get_or_none(lambda name=name: iam.get_instance_profile(InstanceProfileName=name))
            if not got or not _is_lab(got["InstanceProfile"].get("Tags"), wanted):
                continue
            roles = [role["RoleName"] for role in got["InstanceProfile"]["Roles"]]
            foreign = [i for i, lab in profile_users.get(name, []) if not lab]
            if foreign:  # deleting it (or its role) would take the credentials of an instance that is not the lab's
                kept_roles.update(roles)
                warnings.append(f"instance profile {name} is tagged as the lab's but used by instance(s) "
                                f"{', '.join(foreign)}, which are not: left alone, with its role(s) "
                                f"{', '.join(roles) or '(none)'}; detach it from them first")
                continue
            for role in roles:
                yield Resource("profile-role", role, parent=name)
            yield Resource("instance-profile", name)
    for page in iam.get_paginator("list_roles").paginate():
        for listed in page["Roles"]:
            name = listed["RoleName"]
            if name in kept_roles:
                continue
            got = _get_or_none(lambda name=name: iam.get_role(RoleName=name))
            if not got or not _is_lab(got["Role"].get("Tags"), wanted):
                continue
            for attached in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
                for policy in attached["AttachedPolicies"]:
                    yield Resource("managed-policy", policy["PolicyArn"], parent=name)
            for inline in iam.get_paginator("list_role_policies").paginate(RoleName=name):
                for policy_name in inline["PolicyNames"]:
                    yield Resource("inline-policy", policy_name, parent=name)
            yield Resource("role", name)
    yield from _users(iam, wanted)


def _users(iam, wanted: dict[str, str]) -> Iterator[Resource]:
    """Tagged IAM users and what blocks their deletion: access keys, a console password, policies."""
    for page in iam.get_paginator("list_users").paginate():
        for listed in page["Users"]:
            name = listed["UserName"]
            tags = _get_or_none(lambda name=name: iam.list_user_tags(UserName=name))
            if not tags or not _is_lab(tags.get("Tags"), wanted):
                continue
            for keys in iam.get_paginator("list_access_keys").paginate(UserName=name):
                for key in keys["AccessKeyMetadata"]:
                    yield Resource("access-key", key["AccessKeyId"], parent=name)
            if _get_or_none(lambda name=name: iam.get_login_profile(UserName=name)):
                yield Resource("login-profile", "login-profile", parent=name)
            for attached in iam.get_paginator("list_attached_user_policies").paginate(UserName=name):
                for policy in attached["AttachedPolicies"]:
                    yield Resource("user-managed-policy", policy["PolicyArn"], parent=name)
            for inline in iam.get_paginator("list_user_policies").paginate(UserName=name):
                for policy_name in inline["PolicyNames"]:
                    yield Resource("user-inline-policy", policy_name, parent=name)
            yield Resource("user", name)


def find_lab_resources(clients: Clients, stack: str | None = None) -> SweepPlan:
    """Every live resource tagged lab=rolelab (and stack=`stack` if given), in deletion order."""
    wanted = _wanted(stack)
    account = clients("sts").get_caller_identity()["Account"]
    warnings: list[str] = []
    ec2 = clients("ec2")
    found = [*_ec2(ec2, wanted), *_iam(clients("iam"), wanted, _profile_users(ec2, wanted), warnings)]
    order = list(KINDS)
    found.sort(key=lambda r: order.index(r.kind))  # stable: keeps each role's attachments together
    return SweepPlan(account, clients.region, stack, found, warnings)


# -- deleting --------------------------------------------------------------------------------------


def _actions(clients: Clients) -> dict[str, Callable[[Resource], object]]:
    ec2, iam = clients("ec2"), clients("iam")
    return {
        "instance": lambda r: ec2.terminate_instances(InstanceIds=[r.id]),
        "security-group": lambda r: ec2.delete_security_group(GroupId=r.id),
        "key-pair": lambda r: ec2.delete_key_pair(KeyName=r.id),
        "profile-role": lambda r: iam.remove_role_from_instance_profile(InstanceProfileName=r.parent, RoleName=r.id),
        "instance-profile": lambda r: iam.delete_instance_profile(InstanceProfileName=r.id),
        "managed-policy": lambda r: iam.detach_role_policy(RoleName=r.parent, PolicyArn=r.id),
        "inline-policy": lambda r: iam.delete_role_policy(RoleName=r.parent, PolicyName=r.id),
        "role": lambda r: iam.delete_role(RoleName=r.id),
        "access-key": lambda r: iam.delete_access_key(UserName=r.parent, AccessKeyId=r.id),
        "login-profile": lambda r: iam.delete_login_profile(UserName=r.parent),
        "user-managed-policy": lambda r: iam.detach_user_policy(UserName=r.parent, PolicyArn=r.id),
        "user-inline-policy": lambda r: iam.delete_user_policy(UserName=r.parent, PolicyName=r.id),
        "user": lambda r: iam.delete_user(UserName=r.id),
    }


def _retry_dependency(budget: float, poll: float) -> tenacity.Retrying:
    """A security group stays "in use" for a while after its instances terminate: retry DependencyViolation,
    bounded by `budget` seconds (as `pulumi destroy` does), then report the last error."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, ClientError)
                                          and e.response["Error"]["Code"] == "DependencyViolation"),
        stop=tenacity.stop_after_delay(budget), wait=tenacity.wait_exponential(multiplier=0.5, max=poll),
        reraise=True)


def execute(clients: Clients, plan: SweepPlan, progress: Progress = lambda _: None,
            wait_budget: float = 600.0, poll: float = 5.0, group_budget: float = GROUP_RETRY_BUDGET) -> SweepResult:
    """Delete the plan's resources in order; one failure is reported and the rest still tried."""
    account = clients("sts").get_caller_identity()["Account"]
    if (account, clients.region) != (plan.account, plan.region):
        raise UsageError(f"this plan is for account {plan.account} in {plan.region}, but the credentials are for "
                         f"{account} in {clients.region}; find the resources again with these credentials")
    started = time.monotonic()
    result = SweepResult()
    actions = _actions(clients)
    for kind in KINDS:
        for resource in plan.of(kind):
            try:
                if kind == "security-group":
                    _retry_dependency(group_budget, poll)(actions[kind], resource)
                else:
                    actions[kind](resource)
                result.deleted.append(resource)
                progress(f"deleted {kind} {resource.short}")
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code in GONE:
                    result.gone.append(resource)
                    progress(f"already gone: {kind} {resource.short}")
                else:
                    result.failed.append((resource, f"{code}: {error.response['Error'].get('Message', '')}"))
                    progress(f"FAILED {kind} {resource.short}: {code}")
            except BotoCoreError as error:  # no answer (connection, timeout): report and carry on
                result.failed.append((resource, f"{error.__class__.__name__}: {error}"))
                progress(f"FAILED {kind} {resource.short}: {error.__class__.__name__}")
        if kind == "instance":
            _await_terminated(clients("ec2"), result, wait_budget, poll, progress)
    result.seconds = time.monotonic() - started
    return result


def _await_terminated(ec2, result: SweepResult, budget: float, poll: float, progress: Progress) -> None:
    """Security groups in use cannot be deleted, so wait (bounded) until the instances are terminated."""
    ids = [r.id for r in result.deleted if r.kind == "instance"]
    if not ids:
        return
    progress(f"waiting up to {budget:.0f} s for {len(ids)} instance(s) to terminate")
    started = time.monotonic()
    try:
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=ids, WaiterConfig={"Delay": poll, "MaxAttempts": max(1, math.ceil(budget / poll))})
        progress(f"{len(ids)} instance(s) terminated after {time.monotonic() - started:.1f} s")
        return
    except WaiterError:
        pass
    states = {i["InstanceId"]: i["State"]["Name"]
              for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids)
              for reservation in page["Reservations"] for i in reservation["Instances"]}
    for resource in [r for r in result.deleted if r.kind == "instance" and states.get(r.id) != "terminated"]:
        result.deleted.remove(resource)
        result.failed.append((resource, f"still {states.get(resource.id, 'unknown')} after {budget:.0f} s "
                                        f"(its security group stays until it is terminated); run sweep again later"))
        progress(f"FAILED instance {resource.id}: not terminated after {budget:.0f} s")


# -- the command line ------------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """`rolelab sweep`."""
    parser = subparsers.add_parser(
        "sweep",
        help="find (and with --yes delete) every resource tagged lab=rolelab, e.g. after an interrupted destroy",
        description=__doc__)
    parser.add_argument("--local", action="store_true", help="the offline lab cloud of --stack (default: local)")
    parser.add_argument("--stack", "-s", default=None, metavar="S",
                        help="only resources tagged stack=S (local mode: also which lab cloud)")
    parser.add_argument("--region", default=None, help="EC2 region to sweep (required in aws mode)")
    parser.add_argument("--yes", action="store_true", help="delete, after typing the account id back")
    parser.add_argument("--confirm-account", default=None, metavar="ID",
                        help="the account id, for when stdin is not a terminal (CI)")
    parser.set_defaults(func=run)
    return parser


def _clients(args: argparse.Namespace) -> Clients:
    from labs.core.clients import DefaultChainClients
    from labs.provision.operator import operator_clients

    if args.local:
        from labs.provision import local

        local.local_environment()
        outputs = local.read_outputs(args.stack or local.DEFAULT_STACK)
        if args.region and args.region != outputs.region:
            raise UsageError(f"--region {args.region}: the local stack {outputs.stack!r} is in {outputs.region}; "
                             f"drop --region with --local")
        local.require_lab_cloud(outputs)
        return operator_clients(outputs)
    if not args.region:
        raise UsageError("rolelab sweep: aws mode needs --region (e.g. --region us-east-1); "
                         "use --local for the offline lab cloud")
    return DefaultChainClients(args.region)


def _confirm(plan: SweepPlan, confirm_account: str | None) -> None:
    if confirm_account is not None:
        typed = confirm_account
    elif sys.stdin.isatty():
        print(f"Delete these {len(plan.resources)} resources? Type the account id to confirm: ",
              end="", file=sys.stderr, flush=True)
        typed = sys.stdin.readline()
    else:
        raise UsageError("stdin is not a terminal: confirm with --confirm-account <account id> (see the plan above)")
    if typed.strip() != plan.account:
        raise UsageError(f"account id {typed.strip()!r} does not match the account being swept; nothing was deleted")


def run(args: argparse.Namespace) -> int:
    clients = _clients(args)
    with infra_errors("sweep: listing the lab's resources"):
        plan = find_lab_resources(clients, args.stack)
    print(plan.render())
    if not plan.resources:
        return ExitStatus.OK
    if not args.yes:
        print("dry run: nothing was deleted; add --yes to delete the resources above")
        return ExitStatus.OK
    _confirm(plan, args.confirm_account)
    result = execute(clients, plan, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(result.render())
    if result.failed:
        raise InfraError(f"{len(result.failed)} of {len(plan.resources)} deletions failed (listed above); "
                         f"fix the cause and run `rolelab sweep` again")
    return ExitStatus.OK

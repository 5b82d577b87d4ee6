"""`rolelab preflight`: is this account ready for `pulumi up`? Read-only calls, one line per item.

Each item says ok, FAIL (with the fix), or "could not check" (the account would not let us
look, which is not a failure). An API that does not answer at all is exit 3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from botocore.parsers import ResponseParserError

from labs.core.clients import Clients
from labs.core.errors import ExitStatus, InfraError
from labs.core.tags import LAB_TAG, LAB_TAG_VALUE
from labs.program import config as lab_config

OK, FAIL, UNCHECKED = "ok", "FAIL", "could not check"
# What the lab needs beyond creating its own resources: the console output (host keys) and IAM roles.
ACTIONS = ("ec2:GetConsoleOutput", "iam:CreateRole", "iam:PassRole", "ec2:RunInstances")
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotImplemented", "InvalidAction"}


@dataclass(frozen=True)
class Item:
    name: str
    state: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"  {self.state:<15} {self.name:<14} {self.detail}" + (f"; {self.fix}" if self.fix else "")


@dataclass
class PreflightReport:
    items: list[Item]

    @property
    def exit_status(self) -> ExitStatus:
        if any(i.state == FAIL for i in self.items):
            return ExitStatus.LAB_WRONG
        return ExitStatus.OK

    def summary(self) -> str:
        failed = [i.name for i in self.items if i.state == FAIL]
        return f"{len(failed)} of {len(self.items)} items failed ({', '.join(failed)})" if failed else \
            f"all {len(self.items)} items ok"

    def render(self) -> str:
        return "\n".join(["preflight:", *(i.line() for i in self.items)])


def program_config(stack_config: Mapping[str, str], stack: str) -> lab_config.LabConfig:
    """The LabConfig the program would build from `pulumi config --json` of this stack."""
    prefix = f"{lab_config.NAMESPACE}:"
    raw = {k.removeprefix(prefix): v for k, v in stack_config.items() if k.startswith(prefix)}
    return lab_config.parse(raw, region=stack_config.get("aws:region") or lab_config.DEFAULT_REGION, stack=stack)


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _unanswered(error: BotoCoreError) -> InfraError:
    return InfraError(f"preflight: the AWS API did not answer ({error.__class__.__name__}: {error}); "
                      "check the network (or the lab cloud) and retry")


# -- the items ---------------------------------------------------------------------------------------


def check_credentials(clients: Clients) -> tuple[Item, str]:
    """(item, caller ARN)."""
    try:
        who = clients("sts").get_caller_identity()
    except (NoCredentialsError, NoRegionError) as error:
        return Item("credentials", FAIL, f"no usable AWS credentials ({error})",
                    "log in (aws configure sso, aws login, or export AWS_PROFILE) and retry"), ""
    except ClientError as error:
        return Item("credentials", FAIL, f"the credentials were refused ({_code(error)})",
                    "renew them (expired session?) and retry"), ""
    except BotoCoreError as error:
        raise _unanswered(error) from None
    return Item("credentials", OK, f"account {who['Account']} as {who['Arn']}, region {clients.region}"), who["Arn"]


def check_network(clients: Clients, config: lab_config.LabConfig) -> Item:
    ec2 = clients("ec2")
    if config.subnet_id:
        subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [config.subnet_id]}])["Subnets"]
        if not subnets:
            return Item("network", FAIL, f"subnet {config.subnet_id} does not exist in {clients.region}",
                        "set rolelab:subnetId to a subnet of this region")
        subnet = subnets[0]
        if config.vpc_id and subnet["VpcId"] != config.vpc_id:
            return Item("network", FAIL, f"subnet {config.subnet_id} is in {subnet['VpcId']}, not {config.vpc_id}",
                        "set rolelab:vpcId to the subnet's VPC")
        return Item("network", OK, f"subnet {config.subnet_id} in {subnet['VpcId']} ({subnet['AvailabilityZone']}); "
                    "instances get a public IPv4 (associate_public_ip_address)")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        return Item("network", FAIL, f"no default VPC in {clients.region}",
                    "run `aws ec2 create-default-vpc`, or set rolelab:vpcId and rolelab:subnetId "
                    "(a subnet with a route to an internet gateway)")
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                            {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    public = sorted(s["SubnetId"] for s in subnets if s.get("MapPublicIpOnLaunch"))
    if not public:
        return Item("network", FAIL, f"default VPC {vpc} has no default subnet that maps public IPs",
                    "run `aws ec2 create-default-subnet --availability-zone AZ`, or set rolelab:subnetId")
    return Item("network", OK, f"default VPC {vpc} with {len(public)} public default subnet(s)")


def _owned_by(tags: list[dict] | None, stack: str) -> bool:
    found = {t["Key"]: t["Value"] for t in tags or []}
    return found.get(LAB_TAG) == LAB_TAG_VALUE and found.get("stack") == stack


def _taken(kind: str, name: str, tags: list[dict] | None, stack: str, fix: str) -> Item | None:
    if _owned_by(tags, stack):
        return None  # this stack's own, from an earlier up: up keeps it
    return Item("names", FAIL, f"{kind} {name!r} already exists and was not made by stack {stack!r} "
                "(IAM names are account-wide)", fix)


def _existing_tags(tags_of: Callable[[str], list[dict] | None], name: str, missing: str) -> list[dict] | None:
    """The named resource's tags ([] if it has none), or None when the lookup says it does not exist."""
    try:
        return tags_of(name) or []
    except ClientError as error:
        if _code(error) != missing:
            raise
        return None


def check_names(clients: Clients, config: lab_config.LabConfig) -> Item:
    iam, ec2 = clients("iam"), clients("ec2")
    names = config.physical_names()
    role_fix = (f"set rolelab:roleName to another name (e.g. pulumi config set rolelab:roleName "
                f"DemoRoleForEC2-{config.stack}), or delete the old one")

    def key_pair_tags(key: str) -> list[dict] | None:
        pairs = ec2.describe_key_pairs(KeyNames=[key])["KeyPairs"]
        return pairs[0].get("Tags") if pairs else None

    kinds = [  # (what, names, its tags by name, the error code for "no such one", the fix for a name)
        ("IAM role", names["roles"], lambda n: iam.get_role(RoleName=n)["Role"].get("Tags"), "NoSuchEntity",
         lambda _: role_fix),
        ("instance profile", names["instance_profiles"],
         lambda n: iam.get_instance_profile(InstanceProfileName=n)["InstanceProfile"].get("Tags"), "NoSuchEntity",
         lambda _: role_fix),
        ("key pair", names["key_pairs"], key_pair_tags, "InvalidKeyPair.NotFound",
         lambda n: f"delete it (aws ec2 delete-key-pair --key-name {n}) or use another stack name"),
    ]
    for kind, wanted, tags_of, missing, fix in kinds:
        for name in wanted:
            tags = _existing_tags(tags_of, name, missing)
            clash = None if tags is None else _taken(kind, name, tags, config.stack, fix(name))
            if clash:
                return clash
    total = sum(len(v) for v in names.values())
    return Item("names", OK, f"{total} names free or this stack's own: " + ", ".join(
        dict.fromkeys([*names["roles"][:2], *names["key_pairs"][:1]])) + (" ..." if total > 3 else ""))


def check_instance_type(clients: Clients, config: lab_config.LabConfig) -> Item:
    wanted = config.instance_type
    try:
        types = clients("ec2").describe_instance_types(InstanceTypes=[wanted])["InstanceTypes"]
    except ClientError as error:
        if _code(error).startswith("InvalidInstanceType"):
            return Item("instance type", FAIL, f"{wanted} is not offered in {clients.region}",
                        "set rolelab:instanceType to t3.micro")
        raise
    hypervisor = (types[0].get("Hypervisor") if types else None) or "unknown"
    if hypervisor != "nitro":
        return Item("instance type", FAIL, f"{wanted} runs on {hypervisor}, not Nitro: its console output "
                    "(the host-key cross-check) is late and partial", "set rolelab:instanceType to t3.micro")
    return Item("instance type", OK, f"{wanted} is a Nitro type")


def _role_arn(caller_arn: str) -> str:
    """arn:aws:sts::A:assumed-role/R/session -> arn:aws:iam::A:role/R (what SimulatePrincipalPolicy takes)."""
    if ":assumed-role/" in caller_arn:
        head, _, rest = caller_arn.partition(":assumed-role/")
        return head.replace(":sts:", ":iam:") + ":role/" + rest.split("/", 1)[0]
    return caller_arn


def check_permissions(clients: Clients, caller_arn: str) -> Item:
    if not caller_arn or caller_arn.endswith(":root"):
        return Item("permissions", UNCHECKED, "the root user cannot be simulated (it may do everything)")
    try:
        results = clients("iam").simulate_principal_policy(
            PolicySourceArn=_role_arn(caller_arn), ActionNames=list(ACTIONS))["EvaluationResults"]
    except ClientError as error:
        return Item("permissions", UNCHECKED, f"iam:SimulatePrincipalPolicy was refused ({_code(error)}); "
                    f"make sure you may call {', '.join(ACTIONS)}")
    except ResponseParserError:  # an endpoint without the simulator (an emulator) answers with an error page
        return Item("permissions", UNCHECKED, "iam:SimulatePrincipalPolicy gave no usable answer; "
                    f"make sure you may call {', '.join(ACTIONS)}")
    denied = [r["EvalActionName"] for r in results if r.get("EvalDecision") != "allowed"]
    if denied:
        return Item("permissions", FAIL, f"your policies do not allow {', '.join(denied)}",
                    "use an account or role with administrator rights in a sandbox account")
    return Item("permissions", OK, f"allowed: {', '.join(ACTIONS)}")


def check_backend(backend: Callable[[], tuple[bool, str]]) -> Item:
    ok, line = backend()
    return Item("backend", OK if ok else FAIL, line,
                "" if ok else "then run preflight again")


def _guard(name: str, check: Callable[[], Item]) -> Item:
    """A refused read is "could not check"; silence from the API is exit 3."""
    try:
        return check()
    except ClientError as error:
        code = _code(error)
        return Item(name, UNCHECKED, f"the API refused to answer ({code})" + (
            "" if code in DENIED else f": {error.response.get('Error', {}).get('Message', '')}"))
    except BotoCoreError as error:
        raise _unanswered(error) from None


def items(clients: Clients, config: lab_config.LabConfig,
          backend: Callable[[], tuple[bool, str]] | None) -> Iterator[Item]:
    if backend is not None:
        yield check_backend(backend)
    credentials, caller = check_credentials(clients)
    yield credentials
    if credentials.state != OK:
        return  # nothing else can be asked without credentials
    yield _guard("network", lambda: check_network(clients, config))
    yield _guard("names", lambda: check_names(clients, config))
    yield _guard("instance type", lambda: check_instance_type(clients, config))
    yield _guard("permissions", lambda: check_permissions(clients, caller))


def run_preflight(clients: Clients, config: lab_config.LabConfig,
                  backend: Callable[[], tuple[bool, str]] | None | bool = None) -> PreflightReport:
    """backend: a check of the Pulumi backend, or False/None for none (local mode, or already done)."""
    check = backend if callable(backend) else None
    return PreflightReport(list(items(clients, config, check)))


# -- what `rolelab preflight` runs -------------------------------------------------------------------


def for_local(stack: str, overrides: Mapping[str, str]) -> PreflightReport:
    """The same items against a local stack's lab cloud, as its operator (the stack must be up)."""
    import json

    from labs.labcloud.paths import StackPaths
    from labs.provision import local
    from labs.provision.operator import operator_clients

    outputs = local.read_outputs(stack)
    recorded = json.loads(StackPaths.for_stack(stack).config.read_text())
    values = local.effective_config({**recorded["values"], **overrides}, local.PLACEHOLDER_KEY)
    config = lab_config.parse(values, region=outputs.region, stack=stack)
    return run_preflight(operator_clients(outputs), config)


def for_stack(stack: str | None, overrides: Mapping[str, str]) -> PreflightReport:
    """aws mode: the Pulumi backend first, then the account, with the stack's own config."""
    from labs.core.clients import DefaultChainClients
    from labs.core.errors import UsageError
    from labs.provision import pulumi_cli

    pulumi_cli.pulumi_binary()
    backend = check_backend(pulumi_cli.backend_check)
    if backend.state != OK:
        return PreflightReport([backend])
    if not stack:
        raise UsageError("rolelab preflight: give --stack S (the Pulumi stack), or --local for the offline lab cloud")
    values = {**pulumi_cli.stack_config(stack), **{f"{lab_config.NAMESPACE}:{k}": v for k, v in overrides.items()}}
    config = program_config(values, stack)
    report = run_preflight(DefaultChainClients(config.region), config)
    report.items.insert(0, backend)
    return report

"""The lab's configuration: read once, validated whole, before any resource exists."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from labs.core import grammar
from labs.core.errors import ConfigError, UsageError
from labs.core.grammar import shown
from labs.program.policies import DEFAULT_POLICY, SUPPORTED
from labs.program.roster import parse_students, sanitize
from labs.program.sshkeys import public_key_problem

NAMESPACE = "rolelab"
DEFAULT_REGION = "us-east-1"
MAX_TTL_HOURS = 72
WORLD = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Key:
    """One config key: its default (as the string `pulumi config` would hold) and its meaning."""

    name: str
    default: str
    description: str


KEYS: tuple[Key, ...] = (
    Key("students", "1", "A count (1..100) or a comma-separated list of student names; each gets a before/after pair"),
    Key("roleName", "DemoRoleForEC2", "The IAM role; with several students each gets <roleName>-<student>"),
    Key("policies", DEFAULT_POLICY, "Comma-separated AWS managed policies attached to the role"),
    Key("sshCidr", "", "CIDR allowed to SSH in (required in aws mode), e.g. 203.0.113.7/32"),
    Key("allowWorldSsh", "false", "Allow sshCidr 0.0.0.0/0 (SSH open to the internet); refused without it"),
    Key("instanceType", "t3.micro", "EC2 instance type (x86_64; the AMI is Amazon Linux 2023 x86_64)"),
    Key("sshPublicKey", "", "OpenSSH public key text for the key pair; the private key never enters the program"),
    Key("imdsv1Demo", "false", "Add a third host with http_tokens=optional for the IMDSv1 curl demo"),
    Key("exercise", "false", "Exercise mode: hosts, key pair and security group only; the students make the role, "
        "its instance profile and the association themselves, and `rolelab check` grades them"),
    Key("ttlHours", "4", f"Hours before each instance shuts itself down and terminates (0..{MAX_TTL_HOURS}; 0 = never)"),
    Key("vpcId", "", "VPC for the lab (vpc-...); empty: the region's default VPC. Set together with subnetId"),
    Key("subnetId", "", "Subnet for the instances (subnet-...), routed to an internet gateway; empty: a default subnet"),
    Key("studentKeys", "", "Students' own SSH public keys, a JSON object {student: 'ssh-ed25519 AAAA...'} (a roster's "
        "ssh_public_key column); their hosts use a key pair of that key and accept sshPublicKey's too"),
)
KEY_NAMES = {k.name for k in KEYS}
DEFAULTS = {k.name: k.default for k in KEYS}


@dataclass(frozen=True)
class LabConfig:
    students: tuple[str, ...]
    role_name: str
    policies: tuple[str, ...]
    ssh_cidr: str
    allow_world_ssh: bool
    instance_type: str
    ssh_public_key: str
    imdsv1_demo: bool
    ttl_hours: int
    exercise: bool = False
    vpc_id: str = ""
    subnet_id: str = ""
    region: str = DEFAULT_REGION
    stack: str = "dev"
    student_keys: Mapping[str, str] = field(default_factory=dict)  # student -> their own public key
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def class_mode(self) -> bool:
        return len(self.students) > 1

    def role_name_for(self, student: str) -> str:
        """Exactly roleName for one student; roleName-<student> when several share an account."""
        return f"{self.role_name}-{student}" if self.class_mode else self.role_name

    def policy_arns(self) -> tuple[str, ...]:
        return tuple(SUPPORTED[p].arn for p in self.policies)

    def targets(self) -> dict[str, dict]:
        """What the lesson aims at, per student: the role and its policies (made by the program, or in
        exercise mode by the student)."""
        return {s: {"role": self.role_name_for(s), "policies": list(self.policy_arns())} for s in self.students}

    @property
    def key_name(self) -> str:
        """The EC2 key pair: named after the stack, so two stacks in one account never share one."""
        return f"rolelab-{self.stack}"

    def student_key_name(self, student: str) -> str:
        """A student's own key pair (when they bring a key): the stack's name and theirs."""
        return f"{self.key_name}-{student}"

    def physical_names(self) -> dict[str, list[str]]:
        """The fixed names `pulumi up` would create (what preflight checks are free)."""
        roles = [] if self.exercise else [self.role_name_for(s) for s in self.students]  # exercise: the students make them
        pairs = [self.key_name] + [self.student_key_name(s) for s in self.students if s in self.student_keys]
        return {"roles": roles, "instance_profiles": roles, "key_pairs": pairs}


# -- parsing, one small function per key ---------------------------------------------

def _bool(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0", ""):
        return False
    raise ConfigError(key, value, "not a boolean", f"set rolelab:{key} to true or false")


def _role_name(value: str) -> str:
    if not grammar.ROLE_NAME.fullmatch(value):  # ASCII only, as IAM says
        raise ConfigError("roleName", value, "IAM role names are 1..64 ASCII letters, digits and +=,.@_-",
                          "pick a name such as DemoRoleForEC2")
    return value


def _policies(value: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in value.split(",") if p.strip())
    if not names:
        raise ConfigError("policies", value, "no policy given", f"give at least one, e.g. {DEFAULT_POLICY}")
    for name in names:
        if name not in SUPPORTED:
            bare = name.rsplit("/", 1)[-1]
            hint = f"write the name {bare!r}, not the ARN" if bare in SUPPORTED else (
                "supported: " + ", ".join(SUPPORTED))
            raise ConfigError("policies", name, "not a managed policy the lab knows how to verify", hint)
    if len(set(names)) != len(names):
        raise ConfigError("policies", value, "a policy is listed twice", "list each policy once")
    return names


def _ssh_cidr(value: str, allow_world: bool) -> str:
    text = value.strip()
    if not text:
        raise ConfigError("sshCidr", value, "required: who may SSH to the instances",
                          "set it to your address, e.g. pulumi config set rolelab:sshCidr 203.0.113.7/32")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError("sshCidr", value, "not a CIDR", "write an address with a prefix, e.g. 203.0.113.7/32") from None
    if "/" not in text:
        raise ConfigError("sshCidr", value, "no prefix length", f"write {text}/32 for one address")
    if str(network) != text:
        raise ConfigError("sshCidr", value, "host bits are set", f"did you mean {network}?")
    if network.version == 6:
        raise ConfigError("sshCidr", value, "an IPv6 CIDR, but the instances get only a public IPv4",
                          "give your IPv4 address/32, e.g. $(curl -s https://checkip.amazonaws.com)/32")
    if network.prefixlen == 0 and not allow_world:
        raise ConfigError("sshCidr", value, "opens SSH to the whole internet",
                          "use your own address/32, or set rolelab:allowWorldSsh true if you really mean it")
    return text


def _instance_type(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9]+", value):
        raise ConfigError("instanceType", value, "not an EC2 instance type", "use a type such as t3.micro")
    family = value.split(".", 1)[0]
    if family == "a1" or re.fullmatch(r"[a-z]+\d+g[a-z]*", family):
        raise ConfigError("instanceType", value, "a Graviton (arm64) type cannot boot the x86_64 AMI",
                          "use an x86_64 type such as t3.micro")
    return value


def _ssh_public_key(value: str) -> str:
    text = value.strip()
    if not text:
        raise ConfigError("sshPublicKey", "", "required: the instances' key pair is made from it",
                          "pulumi config set rolelab:sshPublicKey \"$(cat ~/.ssh/id_ed25519.pub)\"")
    problem = public_key_problem(text)
    if problem:
        raise ConfigError("sshPublicKey", *problem)
    return text


def _student_keys(value: str, students: tuple[str, ...]) -> dict[str, str]:
    """{"ana": "ssh-ed25519 AAAA..."}: the students who bring their own key (a roster's ssh_public_key column)."""
    if not value.strip():
        return {}
    try:
        keys = json.loads(value)
    except ValueError:
        keys = None
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise ConfigError("studentKeys", value[:24] + ("..." if len(value) > 24 else ""),
                          "not a JSON object of student name to public key",
                          "write e.g. '{\"ana\": \"ssh-ed25519 AAAA... ana@laptop\"}', or use --roster with an "
                          "ssh_public_key column")
    found: dict[str, str] = {}
    for raw, key in keys.items():
        student = sanitize(raw)
        if student not in students:
            raise ConfigError("studentKeys", raw, "names no student of this class",
                              f"use one of the students' names ({', '.join(students[:5])}"
                              f"{', ...' if len(students) > 5 else ''}), or add the student")
        problem = public_key_problem(key.strip())
        if problem:
            shown_value, what, fix = problem
            raise ConfigError("studentKeys", f"{student}: {shown_value}", what, fix)
        found[student] = key.strip()
    return found


def _ttl_hours(value: str) -> int:
    if not re.fullmatch(r"[0-9]+", value.strip()):  # int() would also take 7_2, +5 and Unicode digits
        raise ConfigError("ttlHours", value, "not a whole number of hours",
                          f"give 0..{MAX_TTL_HOURS} (0 disables the shutdown timer)")
    hours = int(value.strip())
    if not 0 <= hours <= MAX_TTL_HOURS:
        raise ConfigError("ttlHours", value, f"out of range 0..{MAX_TTL_HOURS}",
                          f"give 0..{MAX_TTL_HOURS} hours (0 disables the shutdown timer)")
    return hours


def _network(vpc_id: str, subnet_id: str) -> tuple[str, str]:
    vpc_id, subnet_id = vpc_id.strip(), subnet_id.strip()
    if vpc_id and not re.fullmatch(r"vpc-[0-9a-f]{8}([0-9a-f]{9})?", vpc_id):
        raise ConfigError("vpcId", vpc_id, "not a VPC id", "give an id such as vpc-0123456789abcdef0")
    if subnet_id and not re.fullmatch(r"subnet-[0-9a-f]{8}([0-9a-f]{9})?", subnet_id):
        raise ConfigError("subnetId", subnet_id, "not a subnet id", "give an id such as subnet-0123456789abcdef0")
    if vpc_id and not subnet_id:
        raise ConfigError("vpcId", vpc_id, "given without rolelab:subnetId (the instances need a subnet of it)",
                          "also set rolelab:subnetId to a public subnet of that VPC")
    if subnet_id and not vpc_id:
        raise ConfigError("subnetId", subnet_id, "given without rolelab:vpcId (the security group needs the VPC)",
                          "also set rolelab:vpcId to the subnet's VPC")
    return vpc_id, subnet_id


def _region(value: str) -> str:
    if not grammar.REGION.fullmatch(value):
        raise ConfigError("region", value, "not an AWS region", "set aws:region, e.g. us-east-1")
    return value


def parse(raw: Mapping[str, str], region: str = DEFAULT_REGION, stack: str = "dev") -> LabConfig:
    """Validate every key; the first bad one raises ConfigError naming key, value and fix."""
    unknown = sorted(set(raw) - KEY_NAMES)
    if unknown:
        raise ConfigError(unknown[0], raw[unknown[0]], "unknown config key",
                          "known keys: " + ", ".join(sorted(KEY_NAMES)))
    values = {**DEFAULTS, **{k: str(v) for k, v in raw.items()}}
    allow_world = _bool("allowWorldSsh", values["allowWorldSsh"])
    students = parse_students(values["students"])
    vpc_id, subnet_id = _network(values["vpcId"], values["subnetId"])
    config = LabConfig(
        students=students,
        role_name=_role_name(values["roleName"]),
        policies=_policies(values["policies"]),
        ssh_cidr=_ssh_cidr(values["sshCidr"], allow_world),
        allow_world_ssh=allow_world,
        instance_type=_instance_type(values["instanceType"]),
        ssh_public_key=_ssh_public_key(values["sshPublicKey"]),
        imdsv1_demo=_bool("imdsv1Demo", values["imdsv1Demo"]),
        ttl_hours=_ttl_hours(values["ttlHours"]),
        exercise=_bool("exercise", values["exercise"]),
        vpc_id=vpc_id,
        subnet_id=subnet_id,
        region=_region(region),
        stack=stack,
        student_keys=_student_keys(values["studentKeys"], students),
        raw=dict(raw),
    )
    longest = max(students, key=len)
    if config.class_mode and len(config.role_name_for(longest)) > 64:
        raise ConfigError("roleName", config.role_name,
                          f"with student {longest!r} the role name would exceed IAM's 64 characters",
                          "shorten roleName or the student names")
    return config


def parse_assignments(pairs: list[str], flag: str = "--config") -> dict[str, str]:
    """['students=3', 'rolelab:ttlHours=0'] -> {'students': '3', 'ttlHours': '0'}."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().removeprefix(f"{NAMESPACE}:")
        if not sep or not key:
            raise UsageError(f"{flag} {shown(pair)}: expected KEY=VALUE; write e.g. {flag} students=3")
        if key in out:  # silently keeping the last one hides a typo in a long command line
            raise UsageError(f"{flag} {shown(key)} is given twice ({shown(out[key])} and {shown(value)}); keep one")
        out[key] = value
    return out


def load_from_pulumi(get: Callable[[str], str | None] | None = None) -> LabConfig:
    """Read the rolelab: namespace from the running Pulumi program (real or mocked)."""
    import pulumi

    config = pulumi.Config(NAMESPACE)
    reader = get or config.get
    raw = {k.name: value for k in KEYS if (value := reader(k.name)) is not None}
    region = pulumi.Config("aws").get("region") or DEFAULT_REGION
    return parse(raw, region=region, stack=pulumi.get_stack())

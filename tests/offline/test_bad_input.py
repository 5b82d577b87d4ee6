"""Bad input, table-driven: every case exits 2 with ONE line naming what is wrong, and leaves nothing behind.

Each case runs the CLI with a fresh ROLELAB_HOME, so anything it starts or writes is attributable,
and every TCP connect it makes is audited (non-loopback ones refused): a refusal must happen before
any connection at all. Most cases call `main(argv)` in this process (a refusal is all parsing and
checking: a subprocess per case would only add an interpreter start); the cases in SUBPROCESS run
the real `python -m labs.cli` with tests/offline/guard as sitecustomize: the entry point, its exit
status and stderr, and the ROLELAB_HOME problems a fresh process meets first. Cases that need a
lab share one module-scoped stack, and additionally prove that the lab cloud's IAM and EC2 state
did not change.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from labs.cli.main import main
from labs.core import logs
from labs.core.outputs import LabOutputs
from labs.provision import local
from labs.provision.operator import operator_clients
from tests.offline.guard.sitecustomize import audited

PROJECT_DIR = Path(__file__).resolve().parents[2]
LAB_STACK = "badin"
NOWHERE = "http://127.0.0.1:9"  # any boto3 call that slips through lands on a closed loopback port

GUARD_DIR = Path(__file__).resolve().parent / "guard"  # audits connects; refuses non-loopback


# -- the table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # "{in}" is the case's input directory, "{lab}" the shared lab's outputs
    names: str  # the one line must contain this: the offending key, flag, file or value
    files: dict[str, str | bytes] = field(default_factory=dict)  # written under {in} first
    modes: dict[str, int] = field(default_factory=dict)
    home: dict[str, str] = field(default_factory=dict)  # written under ROLELAB_HOME first (state)
    home_is_file: bool = False  # ROLELAB_HOME names a regular file
    home_at: str = ""  # ROLELAB_HOME is this path ("{in}" allowed), not created by the harness
    lab: bool = False  # needs the shared, running lab
    # an injected command would create {in}/PWNED...: the case also proves it never ran


def _host(name: str, role: str | None, address: str = "127.0.0.1", port: int = 9) -> dict:
    return {"student": "student01", "name": name, "instance_id": f"i-0{sum(map(ord, name)):016x}",
            "address": address, "port": port, "user": "root", "role": role,
            "policies": ["arn:aws:iam::aws:policy/IAMReadOnlyAccess"] if role else [],
            "imds_endpoint": "http://127.0.0.1:9", "http_tokens": "required"}


def local_outputs(**changes) -> str:
    """A local-mode outputs document that points only at closed loopback ports and files under {in}."""
    data = {"mode": "local", "region": "us-east-1", "stack": "synthetic",
            "hosts": [_host("no-role", None), _host("with-role", "DemoRoleForEC2")],
            "private_key_path": "{in}/id_ed25519", "known_hosts": "{in}/known_hosts",
            "endpoint": NOWHERE, "operator_credentials": "{in}/operator-credentials"}
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data, indent=2)


def aws_outputs(**changes) -> str:
    hosts = [dict(_host(h, r), imds_endpoint="http://169.254.169.254", user="ec2-user")
             for h, r in (("no-role", None), ("with-role", "DemoRoleForEC2"))]
    return local_outputs(**dict(dict(mode="aws", hosts=hosts, private_key_path=None, known_hosts=None, endpoint=None,
                                     operator_credentials=None), **changes))


OPERATOR = "[rolelab-operator]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\naws_secret_access_key = not-a-secret\n"
# A real key: the key is read before the other files, so every other case needs one it can read.
KEY = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()
NOT_A_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n-----END OPENSSH PRIVATE KEY-----\n"
LOCAL_FILES = {"operator-credentials": OPERATOR, "id_ed25519": KEY, "known_hosts": ""}
LOCAL_MODES = {"operator-credentials": 0o600, "id_ed25519": 0o600}


def case(id: str, *argv: str, names: str, **kw) -> Case:
    return Case(id, argv, names, **kw)


PWN = "touch {in}/PWNED"  # what an injection would run; check_refused asserts no PWNED file appears


def host_case(id: str, names: str, *argv: str, aws: bool = False, **host_changes) -> Case:
    """An outputs file whose first host has one field changed (the file is untrusted input)."""
    make = aws_outputs if aws else local_outputs
    base = json.loads(make())
    first = dict(base["hosts"][0], **host_changes)
    files = {"o.json": make(hosts=[first, *base["hosts"][1:]]), **({} if aws else LOCAL_FILES)}
    return Case(id, argv or ("ssh", "no-role", "--outputs", "{in}/o.json", "--", "true"), names, files=files,
                modes={} if aws else LOCAL_MODES)


CASES: list[Case] = [
    # -- config keys, through plan, local up and demo --------------------------------------------
    case("students-zero", "plan", "-c", "students=0", names="rolelab:students"),
    case("students-negative", "local", "up", "--config", "students=-3", names="rolelab:students"),
    case("students-huge", "demo", "-q", "-c", "students=1000", names="rolelab:students"),
    case("students-empty", "plan", "-c", "students=", names="rolelab:students"),
    case("cidr-malformed", "plan", "-c", "sshCidr=10.0.0.300/32", names="rolelab:sshCidr"),
    case("cidr-no-prefix", "plan", "-c", "sshCidr=198.51.100.7", names="rolelab:sshCidr"),
    case("cidr-host-bits", "plan", "-c", "sshCidr=198.51.100.7/24", names="rolelab:sshCidr"),
    case("cidr-world-v4", "plan", "-c", "sshCidr=0.0.0.0/0", names="allowWorldSsh"),
    case("cidr-ipv6", "plan", "-c", "sshCidr=::/0", names="rolelab:sshCidr"),
    case("vpc-bad", "plan", "-c", "vpcId=vpc-nothex!", names="rolelab:vpcId"),
    case("cidr-not-loopback-local", "local", "up", "-c", "sshCidr=203.0.113.7/32", names="rolelab:sshCidr"),
    case("cidr-not-loopback-demo", "demo", "-q", "-c", "sshCidr=198.51.100.0/24", names="rolelab:sshCidr"),
    case("world-flag-not-bool", "plan", "-c", "allowWorldSsh=maybe", names="rolelab:allowWorldSsh"),
    case("imdsv1-not-bool", "local", "up", "-c", "imdsv1Demo=perhaps", names="rolelab:imdsv1Demo"),
    case("policy-unknown", "plan", "-c", "policies=Nope", names="rolelab:policies"),
    case("policy-arn", "local", "up", "-c", "policies=arn:aws:iam::aws:policy/IAMReadOnlyAccess",
         names="rolelab:policies"),
    case("policy-twice", "plan", "-c", "policies=IAMReadOnlyAccess,IAMReadOnlyAccess", names="rolelab:policies"),
    case("ttl-not-number", "plan", "-c", "ttlHours=abc", names="rolelab:ttlHours"),
    case("ttl-too-big", "local", "up", "-c", "ttlHours=100", names="rolelab:ttlHours"),
    case("ttl-negative", "demo", "-q", "-c", "ttlHours=-1", names="rolelab:ttlHours"),
    case("key-unknown", "plan", "-c", "bogus=1", names="rolelab:bogus"),
    case("config-without-equals", "local", "up", "--config", "students", names="--config 'students'"),
    case("config-without-key", "plan", "-c", "=3", names="--config '=3'"),
    case("instance-type-arm", "plan", "-c", "instanceType=t4g.micro", names="rolelab:instanceType"),
    case("role-name-bad", "plan", "-c", "roleName=bad name", names="rolelab:roleName"),
    case("public-key-is-private", "plan", "-c", f"sshPublicKey={KEY.splitlines()[0]}", names="rolelab:sshPublicKey"),
    case("region-bad", "local", "up", "--region", "mars", names="rolelab:region"),
    case("config-given-twice", "plan", "-c", "students=2", "-c", "rolelab:students=3", names="given twice"),
    case("ttl-underscore", "local", "up", "-c", "ttlHours=7_2", names="rolelab:ttlHours"),
    case("ttl-plus", "plan", "-c", "ttlHours=+5", names="rolelab:ttlHours"),
    case("role-name-unicode", "plan", "-c", "roleName=Rôle", names="rolelab:roleName"),
    case("value-huge", "plan", "-c", "roleName=" + "x" * 100_000, names="rolelab:roleName"),
    case("region-china-offline", "local", "up", "--region", "cn-north-1", names="rolelab:region = 'cn-north-1'"),
    case("region-gov-offline", "demo", "-q", "--region", "us-gov-west-1", names="rolelab:region = 'us-gov-west-1'"),
    case("region-iso-offline", "local", "up", "--region", "us-isob-east-1", names="rolelab:region"),
    # -- rosters ---------------------------------------------------------------------------------
    case("roster-missing", "plan", "--roster", "{in}/nobody.txt", names="--roster {in}/nobody.txt"),
    case("roster-empty", "local", "up", "--roster", "{in}/r.txt", names="--roster {in}/r.txt",
         files={"r.txt": "# the class of 2031\n\n   \n"}),
    case("roster-duplicate", "plan", "--roster", "{in}/r.txt", names="duplicate student",
         files={"r.txt": "Ana María\nBo\nana maria\n"}),
    case("roster-csv-no-name", "local", "up", "--roster", "{in}/r.csv", names="'name' column",
         files={"r.csv": "email,group\nana@example.com,a\n"}),
    case("roster-semicolon-no-name", "plan", "--roster", "{in}/r.csv", names="'name' column",
         files={"r.csv": "email;group\nana@example.com;a\nbo@example.com;b\n"}),
    case("roster-tab-header-only", "plan", "--roster", "{in}/r.tsv", names="no students",
         files={"r.tsv": "name\temail\n"}),
    case("students-float", "plan", "-c", "students=3.0", names="rolelab:students"),
    case("students-exponent", "local", "up", "-c", "students=1e3", names="rolelab:students"),
    case("roster-and-students", "plan", "--roster", "{in}/r.txt", "-c", "students=2", names="--roster",
         files={"r.txt": "ana\nbo\n"}),
    case("roster-long-name", "demo", "-q", "--roster", "{in}/r.txt", names="--roster {in}/r.txt",
         files={"r.txt": "ana\n" + "x" * 40 + "\n"}),
    case("roster-not-utf8", "plan", "--roster", "{in}/r.txt", names="--roster {in}/r.txt",
         files={"r.txt": b"ana\n\xff\xfe\xfa bo\n"}),
    case("roster-too-big", "plan", "--roster", "{in}/r.txt", names="--roster {in}/r.txt",
         files={"r.txt": "".join(f"s{i}\n" for i in range(101))}),
    case("roster-is-directory", "plan", "--roster", "{in}", names="--roster {in}"),
    # -- outputs files ---------------------------------------------------------------------------
    case("outputs-corrupt", "verify", "-q", "--outputs", "{in}/o.json", names="--outputs {in}/o.json",
         files={"o.json": '{"mode": "local", "hosts": ['}),
    case("outputs-list", "verify", "-q", "--outputs", "{in}/o.json", names="not a JSON object",
         files={"o.json": "[1, 2]"}),
    case("outputs-no-hosts", "ssh", "with-role", "--print", "--outputs", "{in}/o.json", names="missing hosts",
         files={"o.json": local_outputs(hosts=None)}),
    case("outputs-bad-mode", "verify", "-q", "--outputs", "{in}/o.json", names="'gcp'",
         files={"o.json": local_outputs(mode="gcp")}),
    case("outputs-empty-hosts", "drill", "attach-role", "-q", "--outputs", "{in}/o.json", names="hosts",
         files={"o.json": local_outputs(hosts=[])}),
    case("outputs-host-lacks-port", "verify", "-q", "--outputs", "{in}/o.json", names="hosts[0] lacks port",
         files={"o.json": local_outputs(hosts=[{k: v for k, v in _host("no-role", None).items() if k != "port"}])}),
    case("outputs-port-not-number", "ssh", "no-role", "--print", "--outputs", "{in}/o.json", names="hosts[0]",
         files={"o.json": local_outputs(hosts=[dict(_host("no-role", None), port="ssh")])}),
    case("outputs-missing", "verify", "-q", "--outputs", "{in}/gone.json", names="--outputs {in}/gone.json"),
    case("outputs-is-directory", "verify", "-q", "--outputs", "{in}", names="--outputs {in}"),
    case("outputs-endpoint-not-loopback", "verify", "-q", "--outputs", "{in}/o.json", names="http://10.0.0.1:5000",
         files={"o.json": local_outputs(endpoint="http://10.0.0.1:5000"), **LOCAL_FILES}, modes=LOCAL_MODES),
    case("outputs-of-a-stack-that-is-down", "verify", "-q", "--outputs", "{in}/o.json", names="{in}/operator-credentials",
         files={"o.json": local_outputs(), "id_ed25519": KEY}, modes=LOCAL_MODES),
    case("outputs-host-not-loopback-ssh", "ssh", "with-role", "--print", "--outputs", "{in}/o.json",
         names="203.0.113.5", files={"o.json": local_outputs(hosts=[_host("with-role", "R", "203.0.113.5")])}),
    case("outputs-host-not-loopback-verify", "verify", "-q", "--outputs", "{in}/o.json", names="203.0.113.5",
         files={"o.json": local_outputs(hosts=[_host("no-role", None), _host("with-role", "R", "203.0.113.5")]),
                **LOCAL_FILES}, modes=LOCAL_MODES),
    # every host field against its own grammar, before it reaches an argv or a shell line
    host_case("outputs-user-is-an-option", "hosts[0].user", user=f"-oProxyCommand={PWN}"),
    host_case("outputs-user-is-an-option-aws", "hosts[0].user", aws=True, user=f"-oProxyCommand={PWN}"),
    host_case("outputs-user-with-space", "hosts[0].user", user="ec2 user"),
    host_case("outputs-address-is-an-option", "hosts[0].address", address=f"-oProxyCommand={PWN}"),
    host_case("outputs-address-with-shell", "hosts[0].address", aws=True, address="host;touch x"),
    host_case("outputs-port-zero", "hosts[0].port", port=0),
    host_case("outputs-port-65536", "hosts[0].port", port=65536),
    host_case("outputs-port-huge", "hosts[0].port", port=10**20),
    host_case("outputs-port-bool", "hosts[0].port", port=True),
    host_case("outputs-port-float", "hosts[0].port", port=22.5),
    host_case("outputs-instance-id-shell", "hosts[0].instance_id", instance_id="i-0abc; touch x"),
    host_case("outputs-role-unicode", "hosts[0].role", "verify", "-q", "--outputs", "{in}/o.json",
              role="Rôle"),
    host_case("outputs-policies-string", "hosts[0].policies", "verify", "-q", "--outputs", "{in}/o.json",
              role="R", policies="arn:aws:iam::aws:policy/IAMReadOnlyAccess"),
    host_case("outputs-policies-not-arns", "hosts[0].policies", "verify", "-q", "--outputs", "{in}/o.json",
              role="R", policies=["IAMReadOnlyAccess"]),
    host_case("outputs-http-tokens-unknown", "hosts[0].http_tokens", "verify", "-q", "--outputs", "{in}/o.json",
              http_tokens="sometimes"),
    host_case("outputs-imds-shell-local", "hosts[0].imds_endpoint", "verify", "-q", "--outputs", "{in}/o.json",
              imds_endpoint=f"http://127.0.0.1:9$({PWN})"),
    host_case("outputs-imds-public-local", "hosts[0].imds_endpoint", "verify", "-q", "--outputs", "{in}/o.json",
              imds_endpoint="http://203.0.113.5"),
    host_case("outputs-imds-other-aws", "hosts[0].imds_endpoint", "verify", "-q", "--outputs", "{in}/o.json",
              aws=True, imds_endpoint="http://169.254.169.254.example.com"),
    case("outputs-region-unknown", "verify", "-q", "--outputs", "{in}/o.json", names="region = 'mars'",
         files={"o.json": local_outputs(region="mars"), **LOCAL_FILES}, modes=LOCAL_MODES),
    case("outputs-stack-traversal", "ssh", "no-role", "--outputs", "{in}/o.json", "--", "true",
         names="stack = '../../x'", files={"o.json": aws_outputs(stack="../../x")}),
    case("outputs-known-hosts-binary", "verify", "-q", "--outputs", "{in}/o.json", names="known_hosts {in}/known_hosts",
         files={"o.json": local_outputs(), **LOCAL_FILES, "known_hosts": bytes(range(256))}, modes=LOCAL_MODES),
    case("outputs-known-hosts-garbage", "verify", "-q", "--outputs", "{in}/o.json", names="known_hosts {in}/known_hosts",
         files={"o.json": local_outputs(), **LOCAL_FILES, "known_hosts": "127.0.0.1 ssh-ed25519 !!!notbase64\n"},
         modes=LOCAL_MODES),
    # -- private keys ----------------------------------------------------------------------------
    case("key-missing-local", "verify", "-q", "--outputs", "{in}/o.json", names="private key {in}/id_ed25519",
         files={"o.json": local_outputs(), "operator-credentials": OPERATOR, "known_hosts": ""}, modes=LOCAL_MODES),
    case("key-not-a-key", "verify", "-q", "--outputs", "{in}/o.json", names="private key {in}/id_ed25519",
         files={"o.json": local_outputs(), **LOCAL_FILES, "id_ed25519": NOT_A_KEY}, modes=LOCAL_MODES),
    case("key-missing-identity", "verify", "-q", "--outputs", "{in}/o.json", "--identity", "{in}/nokey",
         names="private key {in}/nokey", files={"o.json": aws_outputs()}),
    case("key-world-readable", "verify", "-q", "--outputs", "{in}/o.json", "-i", "{in}/id_ed25519",
         names="chmod 600 {in}/id_ed25519", files={"o.json": aws_outputs(), "id_ed25519": KEY},
         modes={"id_ed25519": 0o644}),
    case("bad-practice-aws-unconfirmed", "drill", "bad-practice", "-q", "--outputs", "{in}/o.json",
         names="--i-understand", files={"o.json": aws_outputs()}),
    # -- stack names and state directories --------------------------------------------------------
    case("stack-unknown", "verify", "--local", "--stack", "nope", names="'nope'"),
    case("stack-traversal", "verify", "--local", "--stack", "../x", names="--stack '../x'"),
    case("stack-upper", "local", "up", "--stack", "UPPER", names="--stack 'UPPER'"),
    case("stack-with-space", "local", "down", "--stack", "a b", names="--stack 'a b'"),
    case("stack-empty-down", "local", "down", "--stack", "", names="--stack/-s: a stack name cannot be empty"),
    case("stack-empty-verify", "verify", "--local", "--stack", "", names="--stack/-s: a stack name cannot be empty"),
    case("stack-unknown-sweep", "sweep", "--local", "--stack", "nope", names="'nope'"),
    case("demo-stack-exists", "demo", "-q", names="'demo'", home={"stacks/demo/left-over": "from a crash\n"}),
    case("home-is-a-file", "local", "up", "--stack", "x", names="ROLELAB_HOME", home_is_file=True),
    case("home-cannot-be-made", "local", "up", "--stack", "x", names="ROLELAB_HOME /proc/rolelab-badin",
         home_at="/proc/rolelab-badin"),
    case("home-under-a-file", "demo", "-q", names="ROLELAB_HOME {in}/file/home", home_at="{in}/file/home",
         files={"file": "a regular file\n"}),
    # -- report paths: checked before any work (a demo must not run, then fail to write its page) ---------
    case("demo-html-no-dir", "demo", "-q", "--html", "{in}/nodir/class.html", names="--html {in}/nodir/class.html"),
    case("verify-junit-no-dir", "verify", "-q", "--local", "--stack", "nope", "--junit", "{in}/nodir/r.xml",
         names="--junit {in}/nodir/r.xml"),
    case("drill-html-is-dir", "drill", "attach-role", "-q", "--local", "--html", "{in}", names="--html {in}"),
    case("e2e-junit-no-dir", "e2e", "--stack", "x", "--junit", "{in}/nodir/r.xml", names="--junit {in}/nodir/r.xml"),
    # -- commands and flags ----------------------------------------------------------------------
    case("subcommand-unknown", "nosuch", names="'nosuch'"),
    case("flag-unknown", "plan", "--nosuch", names="--nosuch"),
    case("settle-not-number", "demo", "--settle", "abc", names="--settle"),
    case("connect-budget-not-number", "verify", "--local", "--connect-budget", "soon", names="--connect-budget"),
    case("connect-budget-nan", "verify", "--local", "--connect-budget", "nan", names="--connect-budget"),
    case("connect-budget-inf", "drill", "attach-role", "--local", "--connect-budget", "inf", names="--connect-budget"),
    case("connect-budget-zero", "verify", "--local", "--connect-budget", "0", names="--connect-budget"),
    case("settle-nan", "verify", "-q", "--outputs", "{in}/gone.json", "--settle", "nan", names="--settle"),
    case("settle-inf", "verify", "-q", "--outputs", "{in}/gone.json", "--settle", "inf", names="--settle"),
    case("settle-negative", "verify", "-q", "--outputs", "{in}/gone.json", "--settle", "-1", names="--settle"),
    case("drill-unknown", "drill", "nosuch", "--local", names="'nosuch'"),
    case("sweep-aws-no-region", "sweep", names="--region"),
    case("e2e-no-stack", "e2e", names="--stack"),
    case("local-no-subcommand", "local", names="rolelab local"),
    case("ssh-no-host", "ssh", "--local", names="host"),
    # -- against the running lab ----------------------------------------------------------------
    case("ssh-host-unknown", "ssh", "nosuchhost", "--local", "--stack", LAB_STACK, names="'nosuchhost'", lab=True),
    case("ssh-student-unknown", "ssh", "with-role", "--student", "ghost", "--local", "--stack", LAB_STACK,
         names="'ghost'", lab=True),
    case("drill-student-unknown", "drill", "attach-role", "-q", "--local", "--stack", LAB_STACK,
         "--student", "ghost", names="--student 'ghost'", lab=True),
    case("lab-host-not-loopback-verify", "verify", "-q", "--outputs", "{lab}", names="203.0.113.5", lab=True),
    case("lab-host-not-loopback-drill", "drill", "detach-policy", "-q", "--outputs", "{lab}", names="203.0.113.5",
         lab=True),
    # another config converges a running stack in place (tests/offline/test_converge.py); a bad one is refused
    case("lab-up-with-a-bad-config", "local", "up", "--stack", LAB_STACK, "-c", "policies=NoSuchPolicy",
         names="rolelab:policies", lab=True),
    case("lab-up-other-region", "local", "up", "--stack", LAB_STACK, "--region", "eu-west-1",
         names="--region eu-west-1", lab=True),
    case("lab-sweep-other-region", "sweep", "--local", "--stack", LAB_STACK, "--region", "eu-west-1",
         names="--region eu-west-1", lab=True),
    case("lab-identity-world-readable", "verify", "-q", "--local", "--stack", LAB_STACK, "-i", "{in}/id_ed25519",
         names="chmod 600 {in}/id_ed25519", files={"id_ed25519": KEY}, modes={"id_ed25519": 0o644}, lab=True),
]


# -- the harness --------------------------------------------------------------------------------------


@contextmanager
def rolelab_home(path: Path) -> Iterator[None]:
    before = os.environ.get("ROLELAB_HOME")
    os.environ["ROLELAB_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ROLELAB_HOME", None)
        else:
            os.environ["ROLELAB_HOME"] = before


@dataclass
class Lab:
    home: Path
    outputs: LabOutputs
    non_loopback: Path  # its outputs, with one host's address moved off loopback


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    home = tmp_path_factory.mktemp("badin-home")
    with rolelab_home(home):
        outputs = local.up({}, stack=LAB_STACK).outputs
    try:
        data = outputs.to_dict()
        data["hosts"][-1]["address"] = "203.0.113.5"  # the last host: a lazy check would reach the first ones
        non_loopback = tmp_path_factory.mktemp("badin-in") / "outputs-non-loopback.json"
        non_loopback.write_text(json.dumps(data))
        yield Lab(home, outputs, non_loopback)
    finally:
        with rolelab_home(home):
            local.down(LAB_STACK)


def processes_mentioning(text: str) -> set[int]:
    """Live processes whose command line contains `text` (a ROLELAB_HOME)."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(int(pid))
        except OSError:
            continue
    return found


def stacks_in(home: Path) -> list[str]:
    stacks = home / "stacks"
    return sorted(p.name for p in stacks.iterdir()) if stacks.is_dir() else []


def cloud_state(outputs: LabOutputs) -> dict:
    """What a bad command must not change: IAM users, roles and their policies, instances and profiles."""
    clients = operator_clients(outputs)
    iam, ec2 = clients("iam"), clients("ec2")
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    return {
        "users": sorted(u["UserName"] for u in iam.list_users()["Users"]),
        "roles": {r: sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=r)["AttachedPolicies"])
                  for r in roles},
        "instances": sorted((i["InstanceId"], i["State"]["Name"], i.get("IamInstanceProfile", {}).get("Arn"))
                            for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]),
        "associations": sorted((a["InstanceId"], a["IamInstanceProfile"]["Arn"], a["State"]) for a in
                               ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]),
    }


def sshd_logs(home: Path) -> dict[str, str]:
    return {str(p): p.read_text() for p in sorted((home / "stacks").glob("*/hosts/*/sshd.log"))}


# The real entry point in a process of its own: a few of each kind (argparse, config, roster, outputs,
# injection, key, lab), and the ROLELAB_HOME cases (a fresh process's log set-up meets the home first).
SUBPROCESS = {"students-zero", "cidr-world-v4", "roster-not-utf8", "outputs-corrupt", "outputs-user-is-an-option",
              "key-world-readable", "stack-traversal", "demo-stack-exists", "home-is-a-file", "home-cannot-be-made",
              "home-under-a-file", "subcommand-unknown", "settle-nan", "ssh-host-unknown", "lab-up-with-a-bad-config"}


def case_env(home: Path, connect_log: Path) -> dict[str, str]:
    """What the command runs with; PYTHONPATH also puts the guard into any Python process it would start."""
    return dict(ROLELAB_HOME=str(home), PYTHONPATH=str(GUARD_DIR), ROLELAB_TEST_CONNECT_LOG=str(connect_log),
                AWS_ENDPOINT_URL=NOWHERE)


def run_cli(argv: list[str], home: Path, connect_log: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, **case_env(home, connect_log))
    return subprocess.run([sys.executable, "-m", "labs.cli", *argv], capture_output=True, text=True,
                          cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL, timeout=60)


@contextmanager
def audited_connects(connect_log: Path) -> Iterator[None]:
    """tests/offline/guard/sitecustomize.py's audit, in this process, for the duration of one command."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    socket.socket.connect = audited(real_connect, str(connect_log))
    socket.socket.connect_ex = audited(real_connect_ex, str(connect_log))
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex


@contextmanager
def fresh_logging() -> Iterator[None]:
    """As in a new process: main() sets up the log file under this case's ROLELAB_HOME (once per process
    otherwise); the session's handlers are put back afterwards."""
    root = logging.getLogger("rolelab")
    saved = (root.handlers[:], root.level, root.propagate, logs._kept_log)
    root.handlers.clear()
    logs._kept_log = None
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]
        logs._kept_log = saved[3]


def run_main(argv: list[str], home: Path, connect_log: Path) -> subprocess.CompletedProcess:
    """main(argv) here, as `python -m labs.cli` would run it: same environment, working directory,
    empty stdin; stdout, stderr and the exit status captured. The environment is restored after."""
    environ, cwd, stdin = dict(os.environ), os.getcwd(), sys.stdin
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(case_env(home, connect_log))
    os.chdir(PROJECT_DIR)
    sys.stdin = io.StringIO("")
    try:
        with fresh_logging(), audited_connects(connect_log), redirect_stdout(out), redirect_stderr(err):
            code = main(argv)
    finally:
        sys.stdin = stdin
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
    return subprocess.CompletedProcess(["rolelab", *argv], code, out.getvalue(), err.getvalue())


def prepare(c: Case, tmp_path: Path, lab: Lab | None) -> tuple[Path, Path, list[str]]:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, content in c.files.items():
        path = inputs / name
        text = content.replace("{in}", str(inputs)) if isinstance(content, str) else content
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        path.chmod(c.modes.get(name, 0o644))
    home = lab.home if lab is not None else tmp_path / "home"
    if c.home_at:
        home = Path(c.home_at.replace("{in}", str(inputs)))
    elif lab is None and c.home_is_file:
        home.write_text("not a directory\n")
    elif lab is None:
        home.mkdir()
        for name, content in c.home.items():
            (home / name).parent.mkdir(parents=True, exist_ok=True)
            (home / name).write_text(content)
    lab_file = str(lab.non_loopback) if lab else "{lab}"
    argv = [a.replace("{in}", str(inputs)).replace("{lab}", lab_file) for a in c.argv]
    return inputs, home, argv


def check_refused(c: Case, tmp_path: Path, lab: Lab | None = None) -> subprocess.CompletedProcess:
    inputs, home, argv = prepare(c, tmp_path, lab)
    connect_log = tmp_path / "connects.log"
    stacks_before = stacks_in(home)
    home_files_before = sorted(str(p) for p in home.rglob("*")) if home.is_dir() and lab is None else []
    pids_before = processes_mentioning(str(home))

    proc = (run_cli if c.id in SUBPROCESS else run_main)(argv, home, connect_log)

    shown = f"rolelab {' '.join(argv)}\n--- exit {proc.returncode}\n--- stderr\n{proc.stderr}--- stdout\n{proc.stdout}"
    assert proc.returncode == 2, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr\n{shown}"
    assert lines[0].startswith("rolelab: error:"), shown
    assert not lines[0].startswith("rolelab: error: rolelab: "), f"the prefix is printed twice\n{shown}"
    assert len(lines[0]) < 1000, f"the line echoes too much input ({len(lines[0])} characters)"
    assert c.names.replace("{in}", str(inputs)) in lines[0], f"the line does not name {c.names!r}\n{shown}"
    assert proc.stdout == "", shown
    assert not list(inputs.glob("PWNED*")), "an injected command ran"
    connects = connect_log.read_text() if connect_log.exists() else ""
    assert connects == "", f"the refused command opened connections (pid host port):\n{connects}"
    assert stacks_in(home) == stacks_before, "a stack directory was created"
    if lab is None and home.is_dir():
        made = sorted(set(str(p) for p in home.rglob("*")) - set(home_files_before))
        assert all("/logs" in m[len(str(home)):] for m in made), f"state was written: {made}"
    assert processes_mentioning(str(home)) == pids_before, "a process started by the command is still running"
    return proc


LAB_FREE = [c for c in CASES if not c.lab]
WITH_LAB = [c for c in CASES if c.lab]


def test_the_table_is_big_and_ids_are_unique():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert SUBPROCESS <= {c.id for c in CASES}, "a SUBPROCESS id names no case"
    assert SUBPROCESS & {c.id for c in LAB_FREE} and SUBPROCESS & {c.id for c in WITH_LAB}


@pytest.mark.timeout(60)  # as the subprocess's own timeout, for the cases run in this process
@pytest.mark.parametrize("c", LAB_FREE, ids=[c.id for c in LAB_FREE])
def test_bad_input_exits_2_in_one_line_and_leaves_nothing(c: Case, tmp_path: Path):
    check_refused(c, tmp_path)


@pytest.mark.timeout(120)  # the first case also brings the shared lab up
@pytest.mark.parametrize("c", WITH_LAB, ids=[c.id for c in WITH_LAB])
def test_bad_input_against_a_running_lab_changes_nothing(c: Case, tmp_path: Path, lab: Lab):
    state_before = cloud_state(lab.outputs)
    logs_before = sshd_logs(lab.home)
    check_refused(c, tmp_path, lab)
    assert cloud_state(lab.outputs) == state_before, "the lab cloud's IAM or EC2 state changed"
    assert sshd_logs(lab.home) == logs_before, "a host's sshd saw a connection"
    assert stacks_in(lab.home) == [LAB_STACK]


def test_a_damaged_stack_config_is_exit_2_naming_it_and_the_fix(tmp_path: Path, lab: Lab):
    config = lab.home / "stacks" / LAB_STACK / "config.json"
    saved = config.read_bytes()
    config.write_text('{"values": ')  # a disk that filled up mid-write
    try:
        proc = check_refused(case("lab-config-damaged", "local", "up", "--stack", LAB_STACK, names=str(config),
                                  lab=True), tmp_path, lab)
        assert f"rolelab local down --stack {LAB_STACK}" in proc.stderr
    finally:
        config.write_bytes(saved)

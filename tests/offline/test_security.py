"""Security as tests: no world-open SSH, keys and secrets stay where they belong, pinned host keys,
IMDSv2 required, and local mode talks to loopback only.

The `sec` stack is brought up by the real CLI (`rolelab local up`) in this module's own
ROLELAB_HOME, from an environment WITHOUT AWS_EC2_METADATA_DISABLED (local mode must set it
itself) and with a sitecustomize that audits every TCP connect of the CLI and of the lab cloud
it starts (and refuses non-loopback ones). Then a real `rolelab verify` writes every report
kind and a real `rolelab drill bad-practice` runs, while the sitecustomize records the access
key the drill creates, so the tests can look for the exact secret everywhere.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import os
import re
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import paramiko
import pytest

from labs.core.errors import UsageError
from labs.core.outputs import LabOutputs
from labs.labcloud.aws_clients import require_loopback
from labs.labcloud.paths import StackPaths
from labs.labcloud.procs import wait_for
from labs.lesson.imds_script import token_flow_script, tokenless_script
from labs.provision import local
from labs.provision.plan import make_plan
from labs.remote.session import HostKeyMismatch, HostSession
from tests.offline.conftest import stack_up

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACK = "sec"
V1_STACK = "sec-v1"
WORLD = {"0.0.0.0/0", "::/0"}

GUARD_DIR = Path(__file__).resolve().parent / "guard"  # the sitecustomize hooks


@dataclass
class SecLab:
    home: Path
    tmp: Path
    outputs: LabOutputs
    status: dict
    texts: dict[str, str] = field(default_factory=dict)  # everything a person or CI gets to see, by name
    aws_dirs_after_up: list[str] = field(default_factory=list)
    aws_dirs_after_verify: list[str] = field(default_factory=list)
    drill: subprocess.CompletedProcess | None = None
    drill_keys: list[tuple[str, str]] = field(default_factory=list)  # (access key id, secret) the drill made

    def cli(self, *argv: str, secrets: bool = False, **kw) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "AWS_EC2_METADATA_DISABLED"}
        env.update(ROLELAB_HOME=str(self.home), PYTHONPATH=str(GUARD_DIR),
                   ROLELAB_TEST_CONNECT_LOG=str(self.tmp / "connects.log"))
        if secrets:
            env["ROLELAB_TEST_SECRETS"] = str(self.tmp / "created-keys")
        return subprocess.run([sys.executable, "-m", "labs.cli", *argv], capture_output=True, text=True,
                              cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL, timeout=180, **kw)

    def logs(self) -> dict[str, str]:
        return {"rolelab.log": (self.home / "logs" / "rolelab.log").read_text(errors="replace"),
                f"cloud-{STACK}.log": (self.home / "logs" / f"cloud-{STACK}.log").read_text(errors="replace")}


def host_aws_dirs(status: dict) -> list[str]:
    return [str(Path(h["home"]) / ".aws") for h in status["hosts"] if (Path(h["home"]) / ".aws").exists()]


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args[3:]}: exit {proc.returncode}\n{proc.stderr}\n{proc.stdout[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def module_home(tmp_path_factory) -> Iterator[Path]:
    """This module's own ROLELAB_HOME, so its logs hold only what its commands did."""
    home = tmp_path_factory.mktemp("security-home")
    before = os.environ["ROLELAB_HOME"]
    os.environ["ROLELAB_HOME"] = str(home)
    try:
        yield home
    finally:
        os.environ["ROLELAB_HOME"] = before


@pytest.fixture(scope="module")
def sec(module_home: Path, tmp_path_factory) -> Iterator[SecLab]:
    tmp = tmp_path_factory.mktemp("security")
    lab = SecLab(module_home, tmp, outputs=None, status={})  # type: ignore[arg-type]
    try:
        up = ok(lab.cli("local", "up", "--stack", STACK, "--json"))
        lab.texts["local up --json"] = up.stdout
        lab.outputs = local.read_outputs(STACK)
        lab.texts["outputs.json"] = StackPaths.for_stack(STACK).outputs.read_text()
        status = ok(lab.cli("local", "status", "--stack", STACK, "--json"))
        lab.texts["local status --json"] = status.stdout
        lab.status = json.loads(status.stdout)
        lab.aws_dirs_after_up = host_aws_dirs(lab.status)

        junit, html = tmp / "report.xml", tmp / "report.html"
        text = ok(lab.cli("verify", "--local", "--stack", STACK, "--junit", str(junit), "--html", str(html)))
        as_json = ok(lab.cli("verify", "--local", "--stack", STACK, "--json", "-q"))
        lab.texts.update({"verify text": text.stdout, "verify progress": text.stderr, "verify --json": as_json.stdout,
                          "verify --junit": junit.read_text(), "verify --html": html.read_text()})
        lab.aws_dirs_after_verify = host_aws_dirs(lab.status)

        lab.drill = lab.cli("drill", "bad-practice", "--local", "--stack", STACK, "--json", secrets=True)
        lab.texts.update({"drill --json": lab.drill.stdout, "drill progress": lab.drill.stderr})
        created = tmp / "created-keys"
        lab.drill_keys = [tuple(line.split()) for line in created.read_text().splitlines()] if created.exists() else []
        yield lab
    finally:
        local.down(STACK)


def artifacts() -> dict[str, str]:
    root = PROJECT_DIR / "test-artifacts"
    return {str(p.relative_to(PROJECT_DIR)): p.read_bytes().decode(errors="replace")
            for p in sorted(root.rglob("*")) if p.is_file()} if root.is_dir() else {}


def everything(lab: SecLab) -> dict[str, str]:
    return {**lab.texts, **lab.logs(), **artifacts()}


def leaks(secret: str, texts: dict[str, str]) -> list[str]:
    return [name for name, text in texts.items() if secret in text]


# -- no world-open SSH ---------------------------------------------------------------------------------


SG_TYPES = ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/securityGroupRule:SecurityGroupRule",
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")


def world_ssh_rules(values: dict) -> list[str]:
    """Every ingress rule of every security-group registration that opens port 22 to the world."""
    found = []
    plan = make_plan(values)
    for reg in plan.run.registrations:
        if reg.type not in SG_TYPES:
            continue
        inputs = reg.inputs
        rules = inputs.get("ingress") or []
        if reg.type != SG_TYPES[0] and inputs.get("type", "ingress") == "ingress":
            rules = [dict(inputs, cidrBlocks=inputs.get("cidrBlocks") or [inputs.get("cidrIpv4")],
                          ipv6CidrBlocks=inputs.get("ipv6CidrBlocks") or [inputs.get("cidrIpv6")])]
        for rule in rules:
            every_port = str(rule.get("protocol")) == "-1"
            covers_22 = every_port or int(rule.get("fromPort", 0)) <= 22 <= int(rule.get("toPort", 0))
            sources = set(rule.get("cidrBlocks") or []) | set(rule.get("ipv6CidrBlocks") or [])
            if covers_22 and sources & WORLD:
                found.append(f"{reg.urn}: {rule}")
    return found


def test_the_default_plan_opens_ssh_to_no_one_but_the_configured_cidr():
    assert world_ssh_rules({}) == []
    # the scan can see a world-open rule: the only way to get one is to ask for it explicitly
    assert world_ssh_rules({"sshCidr": "0.0.0.0/0", "allowWorldSsh": "true"}), "the scan missed 0.0.0.0/0"
    with pytest.raises(UsageError, match="rolelab:sshCidr"):  # IPv6, world-open or not, is refused in aws mode
        make_plan({"sshCidr": "::/0"})


# -- IMDSv2 everywhere but the demo host -----------------------------------------------------------------


@pytest.mark.parametrize("values, optional", [({}, []), ({"imdsv1Demo": "true"}, ["student01-imdsv1-instance"])])
def test_the_plan_requires_imdsv2_on_every_host_but_the_imdsv1_demo(values, optional):
    instances = {r.name: r.inputs.get("metadataOptions", {}) for r in make_plan(values).run.registrations
                 if r.type == "aws:ec2/instance:Instance"}
    assert len(instances) == 2 + len(optional)
    assert sorted(n for n, m in instances.items() if m.get("httpTokens") != "required") == optional
    assert all(m.get("httpTokens") == "optional" for n, m in instances.items() if n in optional)


def imds(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, str]:
    require_loopback(url)
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@pytest.fixture(scope="module")
def v1_lab(module_home: Path) -> Iterator[LabOutputs]:
    with stack_up(V1_STACK, {"imdsv1Demo": "true"}) as outputs:
        yield outputs


def test_a_real_lab_answers_tokenless_imds_only_on_the_imdsv1_demo_host(v1_lab: LabOutputs):
    seen = {}
    for host in v1_lab.hosts:
        base = f"{host.imds_endpoint}/latest/meta-data/"
        token = imds(f"{host.imds_endpoint}/latest/api/token", "PUT",
                     {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[1]
        assert imds(base, headers={"X-aws-ec2-metadata-token": token})[0] == 200, f"{host.label}: IMDS is not up"
        seen[host.name] = (host.http_tokens, imds(base)[0])
    assert seen == {"no-role": ("required", 401), "with-role": ("required", 401), "imdsv1": ("optional", 200)}


# -- the private key -------------------------------------------------------------------------------------


def key_body_lines(path: Path) -> list[str]:
    """The base64 lines of an OpenSSH private key, less the first (the same for every ed25519 key)."""
    lines = path.read_text().splitlines()
    body = lines[1:lines.index("-----END OPENSSH PRIVATE KEY-----")]
    return body[1:]


@pytest.mark.slow
def test_the_private_key_is_0600_and_outside_the_repository(sec: SecLab, monkeypatch):
    key = Path(sec.outputs.private_key_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert not key.resolve().is_relative_to(PROJECT_DIR), f"{key} is inside the repository"
    monkeypatch.delenv("ROLELAB_HOME")  # and where it goes by default
    assert not StackPaths.for_stack(STACK).private_key.resolve().is_relative_to(PROJECT_DIR)


@pytest.mark.slow
def test_the_private_key_text_appears_in_no_output_report_log_or_artifact(sec: SecLab):
    lines = key_body_lines(Path(sec.outputs.private_key_path))
    assert len(lines) >= 3 and len(lines[2]) > 60, "expected the private scalar on the key's 4th line"
    texts = everything(sec)
    assert {"verify --json", "verify --junit", "verify --html", "rolelab.log", f"cloud-{STACK}.log"} <= set(texts)
    for line in lines:
        assert leaks(line, texts) == [], f"a line of the private key is in {leaks(line, texts)}"
    assert [n for n, t in texts.items() if "PRIVATE KEY-----" in t] == [], "a PEM private key block is shown"


# -- operator and IAM-user secrets -----------------------------------------------------------------------


def operator_keys(lab: SecLab) -> tuple[str, str]:
    path = Path(lab.outputs.operator_credentials)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = dict(re.findall(r"^(\w+)\s*=\s*(\S+)$", path.read_text(), re.M))
    return values["aws_access_key_id"], values["aws_secret_access_key"]


@pytest.mark.slow
def test_the_operator_secret_is_0600_and_never_shown(sec: SecLab):
    key_id, secret = operator_keys(sec)
    assert len(secret) >= 20
    texts = everything(sec)
    assert leaks(secret, texts) == [], f"the operator's secret access key is in {leaks(secret, texts)}"
    # The access key id is not a secret, but nothing needs to show it either (observed: nowhere).
    assert leaks(key_id, texts) == [], f"the operator's access key id is in {leaks(key_id, texts)}"


@pytest.mark.slow
def test_the_bad_practice_drill_never_shows_the_users_secret(sec: SecLab):
    assert sec.drill is not None and sec.drill.returncode == 0, sec.drill.stderr if sec.drill else "no drill"
    report = json.loads(sec.drill.stdout)
    checks = {r["check"]: r for r in report["results"]}
    assert checks["key-in-plain-text"]["status"] == "pass", "the drill did not put the key on the host"
    assert len(sec.drill_keys) == 1, f"expected one access key made by the drill, saw {len(sec.drill_keys)}"
    key_id, secret = sec.drill_keys[0]
    assert re.fullmatch(r"[A-Za-z0-9/+]{40}", secret)
    texts = everything(sec)
    assert leaks(secret, texts) == [], f"the IAM user's secret access key is in {leaks(secret, texts)}"
    assert leaks(key_id, texts) == [], f"the IAM user's full access key id is in {leaks(key_id, texts)}"
    assert key_id[:4] in sec.drill.stdout  # it is shown shortened, e.g. "AKIA…"
    # and nothing secret-shaped sits next to a credentials-file key name, in any form
    shown = sec.drill.stdout + sec.drill.stderr
    assert not re.search(r"aws_secret_access_key\s*[=:]\s*(?!\*{4})\S", shown)
    assert not re.search(r'"SecretAccessKey"\s*:\s*"(?!\*{4}")', shown)


# -- nothing stored on the hosts -------------------------------------------------------------------------


@pytest.mark.slow
def test_the_lab_writes_no_credentials_on_any_host(sec: SecLab):
    assert len(sec.status["hosts"]) == 2 and all(Path(h["home"]).is_dir() for h in sec.status["hosts"])
    assert sec.aws_dirs_after_up == [], "local up left ~/.aws on a host"
    assert sec.aws_dirs_after_verify == [], "verify left ~/.aws on a host"
    assert host_aws_dirs(sec.status) == [], "the bad-practice drill did not remove the ~/.aws it made"


# -- pinned host keys, RejectPolicy ----------------------------------------------------------------------


def test_rejectpolicy_is_the_only_missing_host_key_policy_in_the_code():
    calls, risky = [], []
    for path in sorted([*PROJECT_DIR.glob("labs/**/*.py"), *PROJECT_DIR.glob("tests/**/*.py")]):
        if path.resolve() == Path(__file__).resolve():
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        where = str(path.relative_to(PROJECT_DIR))
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in ("AutoAddPolicy", "WarningPolicy", "MissingHostKeyPolicy"):
                risky.append(f"{where}:{node.lineno} {name}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "set_missing_host_key_policy":
                calls.append(f"{where}: {ast.unparse(node)}")
    assert risky == []
    assert calls == ["labs/remote/session.py: client.set_missing_host_key_policy(paramiko.RejectPolicy())"]


@pytest.mark.slow
def test_an_unpinned_host_is_refused_before_sshd_authenticates_anyone(sec: SecLab):
    host = sec.outputs.host("with-role")
    log = StackPaths.for_stack(STACK).host_dir(host.instance_id) / "sshd.log"

    def new_lines(since: int) -> str:
        return log.read_text()[since:]

    before = len(log.read_text())
    with pytest.raises(HostKeyMismatch, match="not pinned"):
        HostSession(host, paramiko.HostKeys(), sec.outputs.private_key_path, budget=3, local_only=True).connect()
    # the client hung up during key exchange: sshd logs it as closed or reset, before authentication
    assert wait_for(lambda: re.search(r"Connection (closed|reset) by 127\.0\.0\.1 port \d+ \[preauth\]",
                                      new_lines(before)), 5), f"sshd logged nothing for the attempt:\n{new_lines(before)}"
    assert "Accepted publickey" not in new_lines(before)
    # control: the same session with the pinned keys does authenticate, and the log shows it
    before = len(log.read_text())
    with HostSession(host, paramiko.HostKeys(sec.outputs.known_hosts), sec.outputs.private_key_path,
                     budget=3, local_only=True) as session:
        assert session.run("true").rc == 0
    assert wait_for(lambda: "Accepted publickey" in new_lines(before), 5)


# -- loopback only ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://iam.amazonaws.com", "http://169.254.169.254", "http://10.0.0.1:5000",
                                 "http://[fd00:ec2::254]", "http://127.0.0.1.nip.io:5000"])
def test_local_mode_refuses_a_non_loopback_endpoint(url):
    with pytest.raises(UsageError, match="non-loopback"):
        require_loopback(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "http://127.0.0.2:5000", "http://[::1]:5000"])
def test_local_mode_accepts_a_loopback_endpoint(url):
    assert require_loopback(url) == url


@pytest.mark.parametrize("script", [tokenless_script, token_flow_script], ids=["tokenless", "token-flow"])
@pytest.mark.parametrize("trick", ["$(touch {d}/PWNED)", "`touch {d}/PWNED`", "\"; touch {d}/PWNED; \""])
def test_an_imds_endpoint_is_never_shell_code_on_the_host(script, trick, tmp_path):
    """The endpoint comes from the outputs file; the script must pass it to curl as one word."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "curl").write_text(f'#!/bin/sh\nfor a; do last="$a"; done\nprintf "%s\\n" "$last" >> {tmp_path}/urls\n')
    (fake_bin / "curl").chmod(0o755)
    endpoint = "http://127.0.0.1:9" + trick.format(d=tmp_path)
    subprocess.run(["sh", "-c", script(endpoint)], env={"PATH": f"{fake_bin}:/usr/bin:/bin"}, capture_output=True,
                   timeout=10)
    assert not (tmp_path / "PWNED").exists(), "the endpoint ran as shell code"
    urls = (tmp_path / "urls").read_text().splitlines()
    assert urls and all(u.startswith(endpoint) for u in urls), urls


@pytest.mark.slow
def test_every_host_environment_points_only_at_loopback(sec: SecLab):
    for host in sec.outputs.hosts:
        proc = ok(sec.cli("ssh", host.name, "--local", "--stack", STACK, "--", "env"))
        env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        assert {"AWS_ENDPOINT_URL", "AWS_EC2_METADATA_SERVICE_ENDPOINT"} <= set(env), env
        urls = {k: v for k, v in env.items() if "://" in v}
        off = {k: v for k, v in urls.items() if not ipaddress.ip_address(urlparse(v).hostname or "0.0.0.0").is_loopback}
        assert off == {}, f"{host.label}: non-loopback endpoints in its environment"
        assert env["AWS_EC2_METADATA_SERVICE_ENDPOINT"].rstrip("/") == host.imds_endpoint
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} & set(env)
        home = next(h["home"] for h in sec.status["hosts"] if h["instance_id"] == host.instance_id)
        assert env["HOME"] == home


@pytest.mark.slow
def test_the_lab_cloud_process_cannot_look_for_a_real_imds(sec: SecLab):
    environ = Path(f"/proc/{sec.status['pid']}/environ").read_bytes().split(b"\0")
    # `local up` ran without the variable: local mode set it before starting the lab cloud
    assert b"AWS_EC2_METADATA_DISABLED=true" in environ
    assert not [v for v in environ if v.startswith((b"AWS_ACCESS_KEY_ID=", b"AWS_SECRET_ACCESS_KEY=", b"AWS_PROFILE="))]


@pytest.mark.slow
def test_every_connection_the_cli_and_the_lab_cloud_made_was_to_loopback(sec: SecLab):
    audited = [line.split() for line in (sec.tmp / "connects.log").read_text().splitlines()]
    pids = {pid for pid, _, _ in audited}
    assert str(sec.status["pid"]) in pids, "the audit did not reach the lab cloud process"
    assert len(pids) >= 3, "the audit did not see the CLI's own connections"
    off = sorted({host for _, host, _ in audited if not ipaddress.ip_address(host).is_loopback})
    assert off == [], f"connections off loopback: {off}"


def test_moto_admin_api_is_closed_to_the_hosts_and_open_only_to_the_cli_token(sec: SecLab):
    """From a real host over SSH: moto's state dump (every secret key), reset and dashboard are refused;
    moto's built-in IMDS too. The lab still works, and the CLI's token still opens the admin API."""
    from labs.labcloud.client import CloudClient
    from tests.offline.conftest import ssh

    lab = sec.outputs
    for host in (lab.host("no-role"), lab.host("with-role")):
        for method, path in (("GET", "/moto-api/data.json"), ("GET", "/moto-api/"), ("POST", "/moto-api/reset"),
                             ("GET", "/latest/meta-data/iam/security-credentials/")):
            probe = ssh(lab, host, f'out=$(mktemp); curl -s -o "$out" -w "%{{http_code}}\\n" -X {method} '
                                   f'"$AWS_ENDPOINT_URL{path}"; wc -c < "$out"; rm -f "$out"')
            code, size = probe.stdout.split()
            assert code in ("403", "404") and int(size) < 200, (host.name, method, path, probe.stdout)
    assert ssh(lab, lab.host("with-role"), "aws iam list-users").returncode == 0, "the lab stopped working"
    paths = StackPaths.for_stack(lab.stack)
    assert stat.S_IMODE(paths.control_token.stat().st_mode) == 0o600
    assert isinstance(json.loads(CloudClient(paths).moto_api("/moto-api/config")), dict)  # cheap, unlike data.json

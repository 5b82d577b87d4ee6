"""`rolelab local up/down/status`: the Pulumi program applied to a stack's lab cloud.

up: validate the config (before anything starts), make the stack's SSH key, start the lab
cloud, run __main__.py under the local engine, wait for every host's sshd, then write the
outputs (same schema as aws mode, localized) and a known_hosts file with the pinned keys.
A failure anywhere tears the stack down again: nothing is left half-made.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from labs.core import outputs as lab_outputs
from labs.core.errors import InfraError, UsageError
from labs.labcloud.client import ClientFactory, CloudClient, OperatorCredentials, find_sshd, warm_clients
from labs.labcloud.paths import DEFAULT_STACK, StackPaths
from labs.labcloud.procs import PidRecord, is_ours, wait_for
from labs.program import config as lab_config

log = logging.getLogger("rolelab.local")
LOCAL_SSH_CIDR = "127.0.0.1/32"
HOSTS_READY_TIMEOUT = 60.0


@dataclass
class UpResult:
    outputs: lab_outputs.LabOutputs
    seconds: float
    already_up: bool = False


def local_environment() -> None:
    """Safety: nothing this process starts in local mode may look for the real IMDS."""
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def _ensure_key(paths: StackPaths) -> str:
    key = paths.private_key
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"rolelab-{paths.stack}", "-f", str(key)],
                       check=True, capture_output=True)
        key.chmod(0o600)
    return key.with_suffix(".pub").read_text().strip()


def effective_config(values: Mapping[str, str], public_key: str = "") -> dict[str, str]:
    """Local mode fills the two keys that only a real account needs."""
    filled = dict(values)
    filled.setdefault("sshCidr", LOCAL_SSH_CIDR)
    if public_key:
        filled.setdefault("sshPublicKey", public_key)
    return filled


def validate(values: Mapping[str, str], stack: str, region: str) -> lab_config.LabConfig:
    """Exit-2 checks that need no process: runs before anything is started or written."""
    placeholder = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f check"
    parsed = lab_config.parse(effective_config(values, placeholder), region=region, stack=stack)
    if parsed.ssh_cidr not in (LOCAL_SSH_CIDR, "127.0.0.0/8"):
        raise UsageError(f"rolelab:sshCidr = {parsed.ssh_cidr!r}: local hosts listen on loopback only; "
                         f"leave sshCidr unset in local mode (it is {LOCAL_SSH_CIDR})")
    find_sshd()
    return parsed


def up(values: Mapping[str, str], stack: str = DEFAULT_STACK, region: str = lab_config.DEFAULT_REGION) -> UpResult:
    local_environment()
    started = time.monotonic()
    paths = StackPaths.for_stack(stack)
    validate(values, stack, region)
    client = CloudClient(paths)
    if client.alive() and paths.outputs.exists():
        return _already_up(paths, values)
    if paths.root.exists():
        down(stack)  # leftovers of a crashed or half-made stack
    try:
        cloud = client.spawn(region)
        # The lab cloud takes ~2 s to start; the CLI's own preparation runs meanwhile.
        public_key = _ensure_key(paths)
        effective = effective_config(values, public_key)
        from labs.provision.engine import LocalEngine  # Pulumi's runtime: only `up` needs it
        from labs.provision.mockrun import preload, run_program

        preload()
        warm_clients(LocalEngine.SERVICES)
        info = client.wait_started(cloud)
        operator = OperatorCredentials.read(paths.operator_credentials)
        engine = LocalEngine(ClientFactory(info["endpoint"], region, operator.access_key_id,
                                           operator.secret_access_key), info["account"])
        run = run_program(engine, effective, stack=stack, region=region)
        paths.resources.write_text(engine.created_json())
        engine.raise_failure()
        raw = lab_outputs.from_dict(run.outputs, "program outputs")
        hosts = _wait_for_hosts(client, [h.instance_id for h in raw.hosts])
        outputs = localize(raw, hosts, paths, info)
        _write_known_hosts(paths, hosts)
        paths.outputs.write_text(outputs.to_json())
        paths.config.write_text(json.dumps({"values": dict(values), "region": region}, indent=2))
    except BaseException:
        log.exception("local up failed; tearing the stack down")
        down(stack)
        raise
    return UpResult(outputs, time.monotonic() - started)


def _already_up(paths: StackPaths, values: Mapping[str, str]) -> UpResult:
    recorded = json.loads(paths.config.read_text())
    if recorded["values"] != dict(values):
        raise UsageError(f"stack {paths.stack!r} is already up with another config ({recorded['values']}); "
                         f"run `rolelab local down --stack {paths.stack}` first, or use another --stack")
    return UpResult(read_outputs(paths.stack), 0.0, already_up=True)


def _wait_for_hosts(client: CloudClient, instance_ids: list[str]) -> dict[str, dict]:
    client.request("POST", "/reconcile")
    latest: dict[str, dict] = {}

    def settled() -> bool:
        latest.clear()
        latest.update({h["instance_id"]: h for h in client.status()["hosts"]})
        states = [latest.get(i, {}).get("state") for i in instance_ids]
        return all(s in ("ready", "failed") for s in states)

    if not wait_for(settled, HOSTS_READY_TIMEOUT, interval=0.05):
        pending = [i for i in instance_ids if latest.get(i, {}).get("state") != "ready"]
        raise InfraError(f"hosts not ready after {HOSTS_READY_TIMEOUT:.0f} s: {', '.join(pending)}")
    failed = [f"{i}: {latest[i]['error']}" for i in instance_ids if latest[i]["state"] == "failed"]
    if failed:
        raise InfraError("a host failed to start: " + "; ".join(failed))
    return latest


def localize(raw: lab_outputs.LabOutputs, hosts: dict[str, dict], paths: StackPaths,
             info: dict[str, Any]) -> lab_outputs.LabOutputs:
    """The program's AWS-shaped outputs, pointed at the loopback hosts of the lab cloud."""
    local_hosts = tuple(
        replace(h, address="127.0.0.1", port=hosts[h.instance_id]["ssh_port"], user=hosts[h.instance_id]["user"],
                imds_endpoint=hosts[h.instance_id]["imds_endpoint"])
        for h in raw.hosts
    )
    return replace(raw, mode="local", hosts=local_hosts, private_key_path=str(paths.private_key),
                   known_hosts=str(paths.known_hosts), endpoint=info["endpoint"],
                   operator_credentials=str(paths.operator_credentials))


def _write_known_hosts(paths: StackPaths, hosts: dict[str, dict]) -> None:
    # paramiko and OpenSSH both write non-22 ports as [host]:port
    lines = [f"[127.0.0.1]:{h['ssh_port']} {h['host_key']}" for h in hosts.values() if h["host_key"]]
    paths.known_hosts.write_text("\n".join(lines) + "\n")


def read_outputs(stack: str = DEFAULT_STACK) -> lab_outputs.LabOutputs:
    paths = StackPaths.for_stack(stack)
    if not paths.outputs.exists():
        raise UsageError(f"stack {stack!r} is not up; run `rolelab local up --stack {stack}` first")
    return lab_outputs.load(paths.outputs)


@dataclass
class DownSummary:
    running: list[PidRecord]  # what was alive when down began
    killed: list[PidRecord]  # what had to be signalled by PID (after a crash, or a stuck stop)

    def describe(self) -> str:
        if not self.running:
            return "nothing was running"
        hosts = sum(1 for r in self.running if r.role == "sshd")
        text = f"lab cloud and {hosts} host(s) stopped"
        return text + (f", {len(self.killed)} by recorded PID" if self.killed else "")


def down(stack: str = DEFAULT_STACK) -> DownSummary:
    """Stop the lab cloud and anything it started (by recorded PID), then remove the state. Idempotent."""
    paths = StackPaths.for_stack(stack)
    if not paths.root.exists():
        return DownSummary([], [])
    running = [r for _, r in PidRecord.read_all(paths.pids) if is_ours(r)]
    killed = CloudClient(paths).stop()
    leftovers = [r for _, r in PidRecord.read_all(paths.pids) if is_ours(r)]
    if leftovers:
        raise InfraError(f"could not stop PIDs {', '.join(str(r.pid) for r in leftovers)}; stop them and retry")
    shutil.rmtree(paths.root, ignore_errors=True)
    return DownSummary(running, killed)


def status(stack: str = DEFAULT_STACK) -> dict[str, Any]:
    paths = StackPaths.for_stack(stack)
    client = CloudClient(paths)
    if not paths.root.exists():
        return {"stack": stack, "state": "down"}
    if not client.alive():
        records = [r.pid for _, r in PidRecord.read_all(paths.pids) if is_ours(r)]
        return {"stack": stack, "state": "crashed", "state_dir": str(paths.root), "leftover_pids": records,
                "hint": f"run `rolelab local down --stack {stack}` to clean up"}
    info = client.status()
    names = _host_names(paths)
    for host in info.get("hosts", []):
        host.update(names.get(host["instance_id"], {"student": "?", "host": "?"}))
        host["sshd"] = _sshd_health(host)
    return {"state": "up", **info}


def _host_names(paths: StackPaths) -> dict[str, dict[str, str]]:
    """instance id -> the student and host name the outputs give it (none while `up` is still running)."""
    if not paths.outputs.exists():
        return {}
    return {h.instance_id: {"student": h.student, "host": h.name} for h in lab_outputs.load(paths.outputs).hosts}


def _sshd_health(host: dict[str, Any]) -> str:
    """up only when the recorded sshd is alive and its port accepts a connection (a crash leaves the state "ready")."""
    pid = host.get("sshd_pid")
    if not pid or not _alive(pid):
        return "down"
    try:
        with socket.create_connection(("127.0.0.1", host["ssh_port"]), timeout=1):
            return "up"
    except OSError:
        return "down"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stacks() -> list[str]:
    root = StackPaths.for_stack(DEFAULT_STACK).root.parent
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


__all__ = ["up", "down", "status", "read_outputs", "stacks", "UpResult", "wait_for"]

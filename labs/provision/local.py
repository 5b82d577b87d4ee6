"""`rolelab local up/down/status`: the Pulumi program applied to a stack's lab cloud.

up: validate the config (before anything starts), make the stack's SSH key, start the lab
cloud, run __main__.py under the local engine, wait for every host's sshd, then write the
outputs (same schema as aws mode, localized) and a known_hosts file with the pinned keys.
A failure anywhere tears the stack down again: nothing is left half-made.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from labs.core import outputs as lab_outputs
from labs.core.errors import ConfigError, InfraError, RolelabError, UsageError
from labs.core.signals import shielded
from labs.labcloud.client import ClientFactory, CloudClient, OperatorCredentials, available_regions, find_sshd, keep_models, warm_clients
from labs.labcloud.locks import stack_lock
from labs.labcloud.paths import DEFAULT_STACK, StackPaths
from labs.labcloud.procs import PidRecord, is_ours, stack_processes, stop_pid, wait_for
from labs.program import config as lab_config

log = logging.getLogger("rolelab.local")
LOCAL_SSH_CIDR = "127.0.0.1/32"
HOSTS_READY_TIMEOUT = 60.0
# stands in for the stack's own key where only the config's validity matters
PLACEHOLDER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f check"


@dataclass
class UpResult:
    outputs: lab_outputs.LabOutputs
    seconds: float
    already_up: bool = False
    put_back: list[str] = field(default_factory=list)  # what a converging up changed in place, for people


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


def write_private(path, text: str) -> None:
    """0600 from the first byte: the resource record holds the hosts' private keys (the state's secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def effective_config(values: Mapping[str, str], public_key: str = "") -> dict[str, str]:
    """Local mode fills the two keys that only a real account needs."""
    filled = dict(values)
    filled.setdefault("sshCidr", LOCAL_SSH_CIDR)
    if public_key:
        filled.setdefault("sshPublicKey", public_key)
    return filled


@functools.lru_cache(maxsize=1)
def offline_regions() -> list[str]:
    """The lab cloud emulates the commercial partition only (ARNs `arn:aws:`; moto's other partitions lack the
    managed policies and AMI parameters the lesson needs)."""
    return available_regions("ec2", "aws")


def validate(values: Mapping[str, str], stack: str, region: str) -> lab_config.LabConfig:
    """Exit-2 checks that need no process: runs before anything is started or written."""
    parsed = lab_config.parse(effective_config(values, PLACEHOLDER_KEY), region=region, stack=stack)
    if region not in offline_regions():
        raise ConfigError("region", region, "the offline lab cloud emulates the aws partition only "
                                     "(not aws-cn, aws-us-gov or aws-iso*)",
                          "use a commercial region such as us-east-1 or eu-west-1, or aws mode")
    if parsed.ssh_cidr not in (LOCAL_SSH_CIDR, "127.0.0.0/8"):
        raise UsageError(f"rolelab:sshCidr = {parsed.ssh_cidr!r}: local hosts listen on loopback only; "
                         f"leave sshCidr unset in local mode (it is {LOCAL_SSH_CIDR})")
    find_sshd()
    return parsed


def lock(stack: str, doing: str, wait: bool = False):
    """The stack's lock (see labs.labcloud.locks): one up, down, drill or demo on a stack at a time."""
    return stack_lock(StackPaths.for_stack(stack), doing, wait)


def up(values: Mapping[str, str], stack: str = DEFAULT_STACK, region: str | None = None,
       wait: bool = False, students: tuple[str, ...] | None = None,
       when_warm: Callable[[StackPaths], None] | None = None) -> UpResult:
    """region None: us-east-1 for a new stack, whatever the running stack has for an existing one.
    wait: if another command holds the stack, wait for it rather than refuse. On a running stack,
    converge it to the config and repair drift (only for `students` when given). when_warm: called by a
    new stack's up once the program's modules are imported, before it runs (labs.cli.warm forks there)."""
    local_environment()
    keep_models()  # validate, the program's engine and the drift plan then parse each AWS model once
    validate(values, stack, region or lab_config.DEFAULT_REGION)
    with lock(stack, "being brought up", wait):
        return _up(values, stack, region, students, when_warm)


def _up(values: Mapping[str, str], stack: str, region: str | None, students: tuple[str, ...] | None,
        when_warm: Callable[[StackPaths], None] | None = None) -> UpResult:
    started = time.monotonic()
    paths = StackPaths.for_stack(stack)
    client = CloudClient(paths)
    if client.alive() and paths.outputs.exists():
        return _converge(paths, values, started, students, region, when_warm)
    region = region or lab_config.DEFAULT_REGION
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
        if when_warm:
            when_warm(paths)
        info = client.wait_started(cloud)
        operator = OperatorCredentials.read(paths.operator_credentials)
        engine = LocalEngine(ClientFactory(info["endpoint"], region, operator.access_key_id,
                                           operator.secret_access_key), info["account"])
        try:
            run = _in_worker(lambda: run_program(engine, effective, stack=stack, region=region))
        except RolelabError:
            engine.raise_failure()  # the first failed call, not the program's reaction to its empty answer
            raise
        finally:
            write_private(paths.resources, engine.created_json())
        engine.raise_failure()
        raw = lab_outputs.from_dict(run.outputs, "program outputs")
        hosts = _wait_for_hosts(client, [h.instance_id for h in raw.hosts])
        outputs = localize(raw, hosts, paths, info)
        _write_known_hosts(paths, hosts)
        if outputs.exercise:  # the students' consoles: the rights of a sandbox account, nothing else
            from labs.provision.consoles import make_consoles

            make_consoles(ClientFactory(info["endpoint"], region, operator.access_key_id,
                                        operator.secret_access_key), outputs, paths.root)
        paths.outputs.write_text(outputs.to_json())
        paths.config.write_text(json.dumps({"values": dict(values), "region": region}, indent=2))
    except BaseException as error:
        # Shielded from the first moment: a second Ctrl-C must not leave a half stack behind.
        with shielded(f"tearing down the half-made stack {stack!r}", announce=isinstance(error, KeyboardInterrupt)):
            log.exception("local up failed; tearing the stack down")
            down(stack)
        raise
    return UpResult(outputs, time.monotonic() - started)


def operator_for(paths: StackPaths, outputs: lab_outputs.LabOutputs) -> ClientFactory:
    operator = OperatorCredentials.read(paths.operator_credentials)
    return ClientFactory(outputs.endpoint or "", outputs.region, operator.access_key_id, operator.secret_access_key)


def preview(values: Mapping[str, str], stack: str = DEFAULT_STACK, students: tuple[str, ...] | None = None):
    """What `up` would change on the running stack (the program's steps, then drift), changing nothing."""
    from labs.provision import converge

    paths = StackPaths.for_stack(stack)
    outputs = read_outputs(stack)
    operator = operator_for(paths, outputs)
    changes = converge.config_changes(paths.recorded_config()["values"], values)
    steps = _run_converging(paths, values, outputs.region, dry_run=True).steps if changes else []
    planned = converge.plan(outputs, values if not changes else paths.recorded_config()["values"],
                            operator, students, changes)
    planned.steps = steps
    return planned


def _run_converging(paths: StackPaths, values: Mapping[str, str], region: str, dry_run: bool):
    """The program under the converging engine: the recorded resources against its registrations."""
    from labs.provision.converging import ConvergingEngine
    from labs.provision.engine import read_record, record_json
    from labs.provision.mockrun import run_program

    info = CloudClient(paths).info() or {}
    operator = OperatorCredentials.read(paths.operator_credentials)

    saving = threading.Lock()  # the program registers resources from several threads

    def save(state) -> None:  # after every step: an interrupted up leaves the record true
        with saving:
            tmp = paths.resources.with_suffix(".tmp")
            write_private(tmp, record_json(state))
            tmp.replace(paths.resources)

    engine = ConvergingEngine(ClientFactory(info["endpoint"], region, operator.access_key_id,
                                            operator.secret_access_key), info["account"],
                              read_record(paths.resources.read_text()), dry_run=dry_run, save=save)
    effective = effective_config(values, paths.private_key.with_suffix(".pub").read_text().strip())
    engine.outputs = _in_worker(lambda: run_program(engine, effective, stack=paths.stack, region=region)).outputs
    engine.finish()
    engine.raise_failure()
    return engine


def _converge(paths: StackPaths, values: Mapping[str, str], started: float,
              students: tuple[str, ...] | None, region: str | None = None,
              when_warm: Callable[[StackPaths], None] | None = None) -> UpResult:
    """`up` on a running stack: the program's changes in place (when the config changed), then drift put back.
    A stack without a warm host gets one here when the program runs anyway (its imports are the host's)."""
    from labs.provision import converge

    recorded = paths.recorded_config()
    outputs = read_outputs(paths.stack)
    if region and region != recorded.get("region", outputs.region):
        raise UsageError(f"--region {region}: stack {paths.stack!r} is already up in {outputs.region}; "
                         f"run `rolelab local down --stack {paths.stack}` first, or use another --stack")
    operator = operator_for(paths, outputs)
    done: list[str] = []
    if converge.config_changes(recorded["values"], values):
        if when_warm:
            from labs.provision.mockrun import preload

            preload()
            when_warm(paths)
        engine = _run_converging(paths, values, outputs.region, dry_run=False)
        done += [step.line() for step in engine.steps]
        client = CloudClient(paths)
        raw = lab_outputs.from_dict(engine.outputs, "program outputs")
        hosts = _wait_for_hosts(client, [h.instance_id for h in raw.hosts])
        outputs = localize(raw, hosts, paths, client.info() or {})
        _write_known_hosts(paths, hosts)
        if outputs.exercise:
            from labs.provision.consoles import make_consoles

            make_consoles(operator, outputs, paths.root, only_missing=True)
        paths.outputs.write_text(outputs.to_json())
        paths.config.write_text(json.dumps({**recorded, "values": dict(values)}, indent=2))
    planned = converge.plan(outputs, values, operator, students)
    done += [f"~ drift   {line}" for line in converge.apply(planned, operator)]
    paths.outputs.write_text(planned.outputs.to_json())
    return UpResult(planned.outputs, time.monotonic() - started, already_up=True, put_back=done)


def _in_worker(call: Callable[[], Any]) -> Any:
    """Run `call` in a daemon thread and wait for it here. Pulumi's runtime catches a KeyboardInterrupt (or our
    SIGTERM) raised inside it and then waits for its RPCs forever; in a worker, the interrupt is raised in this
    thread at once, the stack is torn down, and the worker's calls then fail on their own."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        loop = asyncio.new_event_loop()  # the worker's own, closed after (pulumi would make one and leave it)
        asyncio.set_event_loop(loop)
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 handed to the waiting thread
            outcome["error"] = error
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    worker = threading.Thread(target=target, name="pulumi-program", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


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
    found: list[PidRecord] = field(default_factory=list)  # alive with no PID record: found by command line
    state_removed: bool = False

    def describe(self) -> str:
        if not self.running:
            return "nothing was running"
        hosts = sum(1 for r in self.running if r.role == "sshd")
        clouds = sum(1 for r in self.running if r.role == "cloud")
        text = f"{'lab cloud and ' if clouds else ''}{hosts} host(s) stopped"
        # A warm host (labs.cli.warm) is always stopped by its PID: that is its way out, not news.
        recorded = [r for r in self.killed if r not in self.found and r.role != "warm"]
        if recorded:
            text += f", {len(recorded)} by recorded PID"
        if self.found:
            pids = ", ".join(f"{r.role} {r.pid}" for r in self.found)
            text += f", {len(self.found)} found by command line with no PID record ({pids})"
        return text


def unrecorded(paths: StackPaths) -> list[PidRecord]:
    """The stack's processes that its PID records do not name: its state was deleted, or a record is torn."""
    recorded = {r.pid for _, r in PidRecord.read_all(paths.pids)}
    return [r for r in stack_processes(paths.root.parent).get(paths.stack, []) if r.pid not in recorded]


def down(stack: str = DEFAULT_STACK, wait: bool = False) -> DownSummary:
    """Stop the lab cloud and anything it started, by PID (recorded, else found by the state directory in
    their command lines), then remove the state. Idempotent. Shielded: a Ctrl-C meanwhile is noted, not obeyed."""
    paths = StackPaths.for_stack(stack)
    if not paths.root.exists() and not unrecorded(paths):
        return DownSummary([], [])
    with lock(stack, "being taken down", wait), shielded(f"stopping stack {stack!r}"):
        return _down(paths)


def _down(paths: StackPaths) -> DownSummary:
    running = [r for _, r in PidRecord.read_all(paths.pids) if is_ours(r)]
    found = unrecorded(paths)
    killed = CloudClient(paths).stop() if paths.root.exists() else []
    # What no record names (a deleted state, a torn cloud.json): sshds before their cloud, by PID.
    for record in sorted(unrecorded(paths), key=lambda r: r.role == "cloud"):
        if stop_pid(record):
            killed.append(record)
    leftovers = [r for _, r in PidRecord.read_all(paths.pids) if is_ours(r)] + unrecorded(paths)
    if leftovers:
        raise InfraError(f"could not stop PIDs {', '.join(str(r.pid) for r in leftovers)}; stop them and retry")
    removed = paths.root.exists()
    shutil.rmtree(paths.root, ignore_errors=True)
    return DownSummary(running + found, killed, found, removed)


def status(stack: str = DEFAULT_STACK) -> dict[str, Any]:
    paths = StackPaths.for_stack(stack)
    client = CloudClient(paths)
    if not paths.root.exists():
        orphans = unrecorded(paths)
        if orphans:
            return {"stack": stack, "state": "orphaned", "leftover_pids": [r.pid for r in orphans],
                    "hint": f"its state directory is gone but {len(orphans)} process(es) run on; "
                            f"run `rolelab local down --stack {stack}`"}
        return {"stack": stack, "state": "down"}
    crashed = {"stack": stack, "state": "crashed", "state_dir": str(paths.root),
               "hint": f"run `rolelab local down --stack {stack}` to clean up"}
    if not client.alive():
        records = [r.pid for _, r in PidRecord.read_all(paths.pids) if is_ours(r)] + [r.pid for r in unrecorded(paths)]
        return {**crashed, "leftover_pids": records}
    try:
        info = client.status()
    except InfraError:  # it died between the two looks (a SIGKILL lands in between): that is a crash too
        return {**crashed, "leftover_pids": [r.pid for _, r in PidRecord.read_all(paths.pids) if is_ours(r)]}
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


def running_stacks() -> list[dict[str, Any]]:
    """Every stack with a state directory or a process: its state, hosts and health (short timeouts)."""
    root = StackPaths.for_stack(DEFAULT_STACK).root.parent
    listed = []
    for name in sorted(set(stacks()) | set(stack_processes(root))):
        client = CloudClient(StackPaths.for_stack(name))
        if not client.alive():
            listed.append(status(name))
            continue
        try:
            listed.append({"state": "up", "health": "ok",
                           **client.request("GET", "/status", timeout=HEALTH_TIMEOUT)})
        except InfraError:
            listed.append({"stack": name, "state": "up", "health": f"no answer in {HEALTH_TIMEOUT:.0f} s",
                           "pid": (client.info() or {}).get("pid"), "hosts": []})
    return listed


HEALTH_TIMEOUT = 2.0


def require_lab_cloud(outputs: lab_outputs.LabOutputs) -> None:
    """Local mode: the lab cloud answers, or nothing is judged (a dead or stopped cloud is infrastructure,
    exit 3, not a lab that is wrong). Its control /health when the stack's state is here, else the endpoint."""
    if outputs.mode != "local":
        return
    paths = StackPaths.for_stack(outputs.stack)
    fix = (f"`rolelab local status --stack {outputs.stack}`, then `rolelab local down --stack {outputs.stack}` "
           f"and `up` again")
    client = CloudClient(paths)
    info = client.info()
    if info is not None and info.get("endpoint") == outputs.endpoint:
        try:
            if client.request("GET", "/health", timeout=HEALTH_TIMEOUT).get("ok"):
                return
        except InfraError:
            pass
        raise InfraError(f"the lab cloud of stack {outputs.stack!r} does not answer (pid {info.get('pid')}, "
                         f"{HEALTH_TIMEOUT:.0f} s); nothing was checked: {fix}")
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(outputs.endpoint + "/", timeout=HEALTH_TIMEOUT).close()
    except urllib.error.HTTPError:
        return  # it answered (a refusal is an answer)
    except OSError as error:
        raise InfraError(f"the lab cloud at {outputs.endpoint} does not answer ({error}); nothing was checked: "
                         f"{fix}") from None


def stacks() -> list[str]:
    root = StackPaths.for_stack(DEFAULT_STACK).root.parent
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


__all__ = ["up", "down", "lock", "status", "running_stacks", "read_outputs", "stacks", "UpResult", "wait_for"]

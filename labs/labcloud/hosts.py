"""Hosts materialized from moto's EC2 state: running instance -> IMDS + sshd; otherwise none.

The reconciler only reads EC2 state, so any client that drives the EC2 API (our engine,
the aws CLI, boto3 in a drill) gets hosts, exactly as instances get machines on EC2.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from labs.labcloud.imds import ImdsServer
from labs.labcloud.metadata import CredentialMinter, MotoMetadata
from labs.labcloud.procs import free_port
from labs.labcloud.sshd import PortTaken, SshdHost, login_user

log = logging.getLogger("rolelab.cloud.hosts")


def aws_cli_dir() -> str:
    """The bin directory of the aws CLI this lab cloud ships (the venv's), for hosts' PATH."""
    beside = Path(sys.executable).parent / "aws"
    found = str(beside) if beside.exists() else shutil.which("aws")
    if not found:
        raise RuntimeError("the aws CLI is not installed next to this Python; pip install awscli")
    return str(Path(found).parent)


@dataclass
class LocalHost:
    instance_id: str
    imds: ImdsServer
    sshd: SshdHost
    state: str = "starting"  # starting -> ready; stopped; failed
    error: str = ""
    created: float = field(default_factory=time.time)
    ready_seconds: float | None = None

    def describe(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "state": self.state,
            "ssh_port": self.sshd.port,
            "imds_endpoint": self.imds.endpoint,
            "imds": "down" if not self.imds.running else ("slow" if self.imds.delay else "up"),
            "sshd_pid": self.sshd.pid,
            "user": login_user(),
            "host_key": self.sshd.host_public_key,
            "home": str(self.sshd.home),
            "ready_seconds": self.ready_seconds,
            "error": self.error,
        }


def start_sshd(sshd: SshdHost, pinned: bool, attempts: int = 3) -> None:
    """Start sshd; a port taken since it was chosen means a new port, unless clients pin this one."""
    for attempt in range(attempts):
        try:
            sshd.start()
            return
        except PortTaken:
            if attempt == attempts - 1 or pinned:
                raise
            log.info("port %d of %s was taken; trying another", sshd.port, sshd.instance_id)
            sshd.port = free_port()
            sshd.prepare()


class HostManager:
    def __init__(self, account_id: str, region: str, endpoint: str, hosts_dir: Path, pid_dir: Path,
                 minter: CredentialMinter, workers: int = 4):
        from moto.ec2.models import ec2_backends

        self._ec2 = ec2_backends[account_id][region]
        self.region = region
        self.endpoint = endpoint
        self.hosts_dir = hosts_dir
        self.pid_dir = pid_dir
        hosts_dir.mkdir(exist_ok=True)
        pid_dir.mkdir(exist_ok=True)
        self.metadata = MotoMetadata(account_id, region)
        self.minter = minter
        self.hosts: dict[str, LocalHost] = {}
        self.parked: dict[str, LocalHost] = {}  # stopped instances keep their ports and host key
        self.sshd_delays: dict[str, float] = {}  # fault: the next sshd start waits this long
        self.delayed: Callable[[], bool] = lambda: False  # is IAM propagation being delayed?
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="host-start")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._aws_dir = aws_cli_dir()

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Reconcile now rather than at the next tick (after an API call we know changed EC2)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
                if self.delayed():
                    for instance_id in list(self.hosts):
                        self.metadata.facts(instance_id)  # lets a delayed view note role changes on time
            except Exception:  # noqa: BLE001 one bad pass must not end the lab cloud
                log.exception("reconcile failed")
            self._wake.wait(0.1)
            self._wake.clear()

    def _running_ids(self) -> set[str]:
        for _ in range(5):
            try:
                return {i.id for r in list(self._ec2.reservations.values()) for i in list(r.instances)
                        if i.state == "running"}
            except RuntimeError:  # moto mutated the dict under us; look again
                continue
        return set(self.hosts)

    def reconcile(self) -> None:
        wanted = self._running_ids()
        with self._lock:
            for instance_id in sorted(wanted - set(self.hosts)):
                host = self.parked.pop(instance_id, None) or self._new_host(instance_id)
                if not host.imds.running:
                    host.imds.start(host.imds.port)
                host.state = "starting"
                self.hosts[instance_id] = host
                self._pool.submit(self._bring_up, host)
            for instance_id in sorted(set(self.hosts) - wanted):
                self._tear_down(self.hosts.pop(instance_id))

    def _cloud_config(self, instance_id: str) -> dict:
        """The instance's user data as cloud-init reads it: a `#cloud-config` YAML document, else nothing."""
        encoded = self._ec2.get_instance(instance_id).user_data
        try:
            text = encoded.decode() if encoded is not None else ""
            config = yaml.safe_load(text) if text.startswith("#cloud-config") else None
        except (ValueError, yaml.YAMLError):
            log.warning("user data of %s is not valid cloud-config; ignored", instance_id)
            return {}
        return config if isinstance(config, dict) else {}

    def _authorized_keys(self, instance_id: str, cloud_config: dict) -> str:
        """What cloud-init installs for the login user: the key pair's key, then the user data's `ssh_authorized_keys`."""
        instance = self._ec2.get_instance(instance_id)
        pair = self._ec2.key_pairs.get(instance.key_name) if instance.key_name else None
        public = pair.material_public if pair else b""
        keys = [public.decode() if isinstance(public, bytes) else str(public or "")]
        extra = cloud_config.get("ssh_authorized_keys") or []
        keys += [str(k) for k in extra] if isinstance(extra, list) else []
        return "\n".join(k.strip() for k in keys if k and k.strip())

    @staticmethod
    def _host_key(cloud_config: dict) -> tuple[str, str] | None:
        """The ED25519 host key from the user data's `ssh_keys` (cloud-init's cc_ssh), when it names one."""
        keys = cloud_config.get("ssh_keys")
        if not isinstance(keys, dict) or not keys.get("ed25519_private") or not keys.get("ed25519_public"):
            return None
        return str(keys["ed25519_private"]), str(keys["ed25519_public"])

    def _new_host(self, instance_id: str) -> LocalHost:
        imds = ImdsServer(instance_id, self.metadata, self.minter)
        imds.start()
        env = {
            "PATH": f"{self._aws_dir}:/usr/local/bin:/usr/bin:/bin",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint,  # botocore adds the slash itself
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "LANG": "C.UTF-8",
        }
        cloud_config = self._cloud_config(instance_id)
        sshd = SshdHost(instance_id, self.hosts_dir / instance_id, free_port(),
                        self._authorized_keys(instance_id, cloud_config), env, self.pid_dir,
                        given_host_key=self._host_key(cloud_config))
        return LocalHost(instance_id, imds, sshd)

    def _bring_up(self, host: LocalHost, host_key: str = "keep") -> None:
        started = time.monotonic()
        try:
            delay = self.sshd_delays.pop(host.instance_id, 0.0)
            if delay:
                log.info("fault: sshd of %s starts in %.1f s", host.instance_id, delay)
                if self._stop.wait(delay):
                    return
            host.sshd.prepare(host_key)
            start_sshd(host.sshd, pinned=host.ready_seconds is not None)  # pinned: known_hosts names its port
            if host.state == "stopped":  # the instance stopped while we were starting it
                host.sshd.stop()
                return
            host.state, host.ready_seconds = "ready", round(time.monotonic() - started, 3)
            log.info("host %s ready on 127.0.0.1:%d in %.2f s", host.instance_id, host.sshd.port, host.ready_seconds)
        except Exception as error:  # noqa: BLE001 reported through status
            host.state, host.error = "failed", str(error)
            log.exception("host %s failed", host.instance_id)

    def _tear_down(self, host: LocalHost) -> None:
        host.state = "stopped"
        host.sshd.stop()
        host.imds.stop()
        instance = None
        try:
            instance = self._ec2.get_instance(host.instance_id)
        except Exception:  # noqa: BLE001
            pass
        if instance is None or instance.state == "terminated":
            shutil.rmtree(host.sshd.directory, ignore_errors=True)
        else:
            self.parked[host.instance_id] = host  # like an EBS-backed instance: same disk on start
        log.info("host %s stopped", host.instance_id)

    # -- faults, for tests: each mimics something that happens to real hosts ------------

    def restart_sshd(self, instance_id: str, delay: float = 0.0, host_key: str = "keep") -> None:
        host = self._host(instance_id)
        host.sshd.stop()
        host.state = "starting"
        self.sshd_delays[instance_id] = delay
        self._pool.submit(self._bring_up, host, host_key)

    def kill_sshd(self, instance_id: str, hard: bool = False) -> None:
        """A fault: sshd goes away (hard: crashes with its open sessions, mid-command)."""
        host = self._host(instance_id)
        host.sshd.stop(hard=hard)
        host.state = "failed"
        host.error = "sshd crashed (a fault)" if hard else "sshd stopped (a fault)"

    def set_imds(self, instance_id: str, mode: str, delay: float = 0.0) -> None:
        host = self._host(instance_id)
        if mode == "down":
            host.imds.stop()
        else:
            if not host.imds.running:
                host.imds.start(host.imds.port)
            host.imds.delay = delay if mode == "slow" else 0.0

    def _host(self, instance_id: str) -> LocalHost:
        with self._lock:
            if instance_id not in self.hosts:
                raise KeyError(instance_id)
            return self.hosts[instance_id]

    def describe(self) -> list[dict]:
        with self._lock:
            return [self.hosts[i].describe() for i in sorted(self.hosts)]

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=2)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            everything = list(self.hosts.values()) + list(self.parked.values())
            # In parallel: each stop waits a little (a signal, a server loop's poll).
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(lambda host: (host.sshd.stop(), host.imds.stop()), everything))
            self.hosts.clear()
            self.parked.clear()

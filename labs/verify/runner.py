"""Run checks on every host: one SSH connection per host, a bounded pool, eventual expectations.

IAM and IMDS are eventually consistent, so a check whose observation differs from the
expectation is retried with backoff inside a settle budget (aws 120 s, local 10 s); the
time it took to converge is reported. Results come back in a deterministic order.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import paramiko
from paramiko.hostkeys import InvalidHostKey
from tenacity import Retrying, retry_if_result, stop_before_delay, wait_exponential

from labs.core.clients import Clients
from labs.core.errors import InfraError, LabWrong, UsageError
from labs.core.outputs import HostRecord, LabOutputs
from labs.core.result import CommandResult
from labs.lesson.checks import Check, finding
from labs.lesson.classify import Outcome
from labs.lesson.findings import Finding, Status, judge
from labs.remote.hostkeys import console_reader, pinned_for_aws
from labs.remote.keys import load_private_key
from labs.remote.session import HostKeyMismatch, HostSession, require_loopback_host
from labs.verify.hints import observed_hint, unreachable_hint

log = logging.getLogger("rolelab.verify")
SETTLE = {"aws": 120.0, "local": 10.0}
CONNECT_BUDGET = {"aws": 180.0, "local": 15.0}
CHANNELS_PER_HOST = 4  # EC2's sshd allows 10 sessions per connection; stay well below


def check_private_key(path: str | None) -> None:
    if path is None:
        return
    key = Path(path).expanduser()
    if not key.is_file():
        raise UsageError(f"private key {key}: no such file; pass --identity PATH (the key of the lab's key pair)")
    info = key.stat()
    mode = stat.S_IMODE(info.st_mode)
    ours = info.st_uid == os.geteuid()
    if mode & 0o077 and ours:
        raise UsageError(f"private key {key} is readable by others (mode {mode:o}); run: chmod 600 {key}")
    if mode & 0o077 or not os.access(key, os.R_OK):
        # Not the user's file (say /etc/shadow): never advise changing a system file's mode.
        raise UsageError(f"private key {key} belongs to another user (uid {info.st_uid}, mode {mode:o}); "
                         "pass --identity with a private key of your own")


def default_workers(outputs: LabOutputs, checks: int) -> int:
    """Local: the aws CLI runs on this machine's cores, so a little more than the cores.
    aws: the commands run on the instances; our side only waits on SSH, so many more."""
    if outputs.mode == "local":
        return max(2, (os.cpu_count() or 2) + 1)
    return max(1, min(64, checks))


def submission_order(checks: list[Check]) -> list[Check]:
    """Long checks first (an aws CLI start-up is ~10x a curl), so the short ones fill the tail;
    and hosts taken in turn, so workers do not queue on one host's channel limit."""
    turn: dict[str, int] = {}
    rank: dict[str, int] = {}
    for check in checks:
        rank[check.label] = turn.get(check.host.label, 0)
        turn[check.host.label] = rank[check.label] + 1
    return sorted(checks, key=lambda c: (not c.command.startswith("aws "), rank[c.label]))


class Verifier:
    def __init__(self, outputs: LabOutputs, *, identity: str | None = None, settle: float | None = None,
                 connect_budget: float | None = None, workers: int | None = None,
                 operator: Clients | None = None, on_result: Callable[[Finding], None] | None = None,
                 on_wait: Callable[[str, int, int, float], None] | None = None):
        self.outputs = outputs
        if outputs.mode == "local":  # refuse the whole lab before connecting to any of its hosts
            for host in outputs.hosts:
                require_loopback_host(host)
        self.key_filename = identity or outputs.private_key_path
        check_private_key(self.key_filename)
        self.pkey = load_private_key(self.key_filename) if self.key_filename else None
        # ssh-agent as ssh uses it: after --identity's key (or alone in aws mode without one); never
        # for the key a local stack made, which needs no help
        self.allow_agent = identity is not None or outputs.mode == "aws"
        self.settle = SETTLE[outputs.mode] if settle is None else settle
        self.connect_budget = CONNECT_BUDGET[outputs.mode] if connect_budget is None else connect_budget
        self.workers = workers
        self.operator = operator
        self.on_result = on_result
        self.on_wait = on_wait  # (host label, attempt, planned attempts, seconds): a host slow to answer SSH
        self._sessions: dict[str, HostSession] = {}
        self._dead: dict[str, Exception] = {}  # host label -> why it is unreachable or refused
        self._channels: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()
        self._host_keys: paramiko.HostKeys | None = None
        self.events: list[str] = []  # waits worth telling a person about (a host slow to answer SSH)
        if outputs.mode == "local" and outputs.hosts:
            self.host_keys(outputs.hosts[0])  # a broken known_hosts is bad input: say so before anything runs

    # -- connections ------------------------------------------------------------------

    def host_keys(self, host: HostRecord) -> paramiko.HostKeys:
        if self.outputs.mode == "local":
            if self._host_keys is None:
                if not self.outputs.known_hosts or not Path(self.outputs.known_hosts).is_file():
                    raise UsageError(f"known_hosts {self.outputs.known_hosts!r} is missing; "
                                     "re-create the stack's outputs with `rolelab local up`")
                try:
                    self._host_keys = paramiko.HostKeys(self.outputs.known_hosts)
                except (OSError, ValueError, paramiko.SSHException, InvalidHostKey) as error:  # binary, truncated, garbage
                    raise UsageError(f"known_hosts {self.outputs.known_hosts}: not a known_hosts file "
                                     f"({error.__class__.__name__}); re-create the stack's outputs with "
                                     "`rolelab local up`") from None
            return self._host_keys
        if self.operator is None and not host.host_key:
            raise UsageError("aws mode needs the EC2 API to read the hosts' keys from the console output")
        # The outputs' host key; the console is a cross-check (or, for older outputs, the source).
        return pinned_for_aws(host, console_reader(self.operator("ec2")) if self.operator else None)

    def session(self, host: HostRecord) -> HostSession:
        with self._lock:
            if host.label in self._dead:
                raise self._dead[host.label]
            if host.label in self._sessions:
                return self._sessions[host.label]
        keys = self.host_keys(host)  # outside the lock: in aws mode it polls the console for seconds
        with self._lock:
            if host.label not in self._sessions:
                on_attempt = None
                if self.on_wait:
                    on_wait = self.on_wait
                    on_attempt = lambda n, of, seconds: on_wait(host.label, n, of, seconds)  # noqa: E731
                self._sessions[host.label] = HostSession(
                    host, keys, None, budget=self.connect_budget, local_only=self.outputs.mode == "local",
                    on_attempt=on_attempt, pkey=self.pkey, allow_agent=self.allow_agent)
                self._channels[host.label] = threading.Semaphore(CHANNELS_PER_HOST)
            return self._sessions[host.label]

    def _connect(self, host: HostRecord) -> None:
        """Open one host's connection; a host that does not answer is recorded, not raised."""
        try:
            info = self.session(host).connect()
            if info.attempts > 1:
                with self._lock:
                    self.events.append(f"{host.label}: SSH answered after {info.seconds:.1f} s "
                                       f"({info.attempts} attempts)")
        except (InfraError, LabWrong) as error:
            with self._lock:
                self._dead[host.label] = error

    def connect_all(self, hosts: list[HostRecord]) -> dict[str, Exception]:
        """Open every host's connection in parallel; returns the ones that failed."""
        with ThreadPoolExecutor(max_workers=max(1, min(32, len(hosts)))) as pool:
            list(pool.map(self._connect, hosts))
        return dict(self._dead)

    # -- running ------------------------------------------------------------------------

    def run(self, checks: list[Check]) -> list[Finding]:
        """Connect to every host in parallel; a host's checks start as soon as it answers, so healthy
        hosts' results stream while a slow or dead one is still being waited for."""
        hosts = list(dict.fromkeys(c.host for c in checks))
        order = {c.label: i for i, c in enumerate(checks)}
        workers = self.workers or default_workers(self.outputs, len(checks))
        futures: list[Future[Finding]] = []
        with ThreadPoolExecutor(max_workers=max(1, min(32, len(hosts))), thread_name_prefix="connect") as connects, \
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            pending = {connects.submit(self._connect, host): host.label for host in hosts}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                # the hosts that answered together: their checks in the usual interleaved order
                ready = {pending.pop(f) for f in done}
                futures += [pool.submit(self._run_one, c)
                            for c in submission_order([c for c in checks if c.host.label in ready])]
            results = [f.result() for f in futures]
        return sorted(results, key=lambda r: order[r.label])

    def _run_one(self, check: Check) -> Finding:
        started = time.monotonic()
        try:
            result = self._settle(check, started)
        except HostKeyMismatch as error:
            result = finding(check, Status.FAIL, "host key mismatch", 0, time.monotonic() - started, note=str(error))
        except InfraError as error:
            with self._lock:
                self._dead.setdefault(check.host.label, error)
            # the real wait is the connect's, not this check's (it found the host already dead)
            waited = getattr(error, "seconds", 0.0) or time.monotonic() - started
            attempts = getattr(error, "attempts", 0)
            result = finding(check, Status.UNREACHABLE, "unreachable", attempts, waited, note=str(error))
            result = result.with_hint(unreachable_hint(result, self.outputs.mode, getattr(error, "cause", "lost"),
                                                       attempts, waited, self.outputs.stack))
        if result.status is Status.FAIL:
            result = result.with_hint(observed_hint(result))
        if self.on_result:
            self.on_result(result)
        return result

    def _settle(self, check: Check, started: float) -> Finding:
        session = self.session(check.host)
        attempts: list[tuple[str, CommandResult]] = []

        created: list[str] = []  # what an unexpectedly allowed probe made, found and removed again

        def attempt() -> str:
            with self._channels[check.host.label]:
                command_result = session.run(check.command)
            observed = check.evaluate(command_result)
            attempts.append((observed, command_result))
            if observed == str(Outcome.SUCCESS):
                # The probe changed the account (made a bucket, a user): undo it before any retry.
                if check.undo:
                    session.run(check.undo)
                created.extend(self._remove_created(check))
            return observed

        Retrying(retry=retry_if_result(lambda seen: seen != check.expected),
                 stop=stop_before_delay(self.settle),  # no new try that would end past the budget
                 wait=wait_exponential(multiplier=0.25, max=5.0),
                 retry_error_callback=lambda state: state.outcome.result())(attempt)
        observed, last = attempts[-1]
        last = last.redacted()  # reports never show secrets
        if created:
            observed = f"{observed}; {created[0]}"
        status = judge(check.expected, observed)
        took = time.monotonic() - started
        converged = round(took, 3) if status is Status.PASS and len(attempts) > 1 else None
        return finding(check, status, observed, len(attempts), took, evidence=last, converged_after=converged)

    def _remove_created(self, check: Check) -> list[str]:
        """From the operator's side: a create-user that should be denied must not leave a user."""
        if not check.must_not_exist or self.operator is None:
            return []
        iam = self.operator("iam")
        try:
            iam.get_user(UserName=check.must_not_exist)
        except iam.exceptions.NoSuchEntityException:
            return []
        iam.delete_user(UserName=check.must_not_exist)  # leave nothing behind
        return [f"user {check.must_not_exist} was created (deleted again)"]

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

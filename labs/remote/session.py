"""One SSH connection per host (paramiko), pinned host keys, bounded connect retries.

Connect retries only what a booting or restarting host does: refused connections,
timeouts and banner errors, with backoff inside a total time budget. A host key that
differs from the pinned one, or an unknown one, fails at once (RejectPolicy: a key is
never learned on first use): no command is ever sent to such a host.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paramiko
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from labs.core.errors import InfraError, UsageError
from labs.core.outputs import HostRecord
from labs.core.result import CommandResult
from labs.remote.hostkeys import HostKeyMismatch, known_host_name

log = logging.getLogger("rolelab.verify.session")


class Unreachable(InfraError):
    """The host did not answer SSH within its budget, or its connection died.
    `cause` is refused, timeout, auth or lost; attempts and seconds are the real wait."""

    def __init__(self, message: str, cause: str = "lost", attempts: int = 0, seconds: float = 0.0):
        super().__init__(message)
        self.cause, self.attempts, self.seconds = cause, attempts, seconds


def _retryable(error: BaseException) -> bool:
    if isinstance(error, (paramiko.BadHostKeyException, paramiko.AuthenticationException)):
        return False
    if isinstance(error, paramiko.SSHException):
        text = str(error).lower()
        return "banner" in text or "timed out" in text or "reset" in text
    return isinstance(error, (ConnectionRefusedError, ConnectionResetError, socket.timeout, TimeoutError, EOFError,
                              paramiko.ssh_exception.NoValidConnectionsError))


def require_loopback_host(host: HostRecord) -> None:
    """Safety rule: local-mode verification never connects anywhere but loopback."""
    try:
        ok = ipaddress.ip_address(host.address).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(f"{host.label}: local mode refuses non-loopback address {host.address!r}")


CONNECT_WAIT = wait_exponential(multiplier=0.1, max=2.0)
OnAttempt = Callable[[int, int, float], None]  # (attempt, planned attempts, seconds waited so far)


def planned_attempts(budget: float) -> int:
    """About how many connects the budget allows when each is refused at once: tenacity tries
    again while the time spent is under the budget, after waits of 0.1, 0.2, 0.4 ... 2 s."""
    waited, attempts = 0.0, 1
    while waited < budget:
        waited += min(2.0, 0.1 * 2 ** (attempts - 1))
        attempts += 1
    return attempts


@dataclass
class ConnectInfo:
    attempts: int
    seconds: float


class HostSession:
    def __init__(self, host: HostRecord, host_keys: paramiko.HostKeys, key_filename: str | None,
                 budget: float = 30.0, local_only: bool = False, on_attempt: OnAttempt | None = None, *,
                 pkey: paramiko.PKey | None = None, allow_agent: bool | None = None):
        if local_only:
            require_loopback_host(host)
        self.host = host
        self.host_keys = host_keys
        self.key_filename = key_filename
        self.pkey = pkey  # a key already read (and decrypted: labs/remote/keys.py); tried before the agent
        # ssh-agent: offered after the key, as ssh does; default: only when no key was given
        self.allow_agent = key_filename is None and pkey is None if allow_agent is None else allow_agent
        self.budget = budget
        self.on_attempt = on_attempt  # told before every retry, so a person is never left waiting in silence
        self.client: paramiko.SSHClient | None = None
        self.connect_info: ConnectInfo | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> HostSession:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _new_client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        name = known_host_name(self.host.address, self.host.port)
        for key_type, key in (self.host_keys.lookup(name) or {}).items():
            client.get_host_keys().add(name, key_type, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return client

    def connect(self) -> ConnectInfo:
        with self._lock:
            if self.client is not None and self._alive():
                return ConnectInfo(0, 0.0)  # already connected: no new attempt
            return self._connect()

    def _connect(self) -> ConnectInfo:
        started = time.monotonic()
        attempts = 0
        label = f"{self.host.label} ({self.host.address}:{self.host.port})"
        try:
            for attempt in Retrying(retry=retry_if_exception(_retryable), stop=stop_after_delay(self.budget),
                                    wait=CONNECT_WAIT, reraise=True):
                with attempt:
                    attempts += 1
                    if attempts > 1 and self.on_attempt:
                        self.on_attempt(attempts, max(attempts, planned_attempts(self.budget)),
                                        time.monotonic() - started)
                    client = self._new_client()
                    try:
                        client.connect(
                            self.host.address, port=self.host.port, username=self.host.user,
                            pkey=self.pkey, key_filename=self.key_filename, look_for_keys=False,
                            allow_agent=self.allow_agent, timeout=5, banner_timeout=5, auth_timeout=10,
                        )
                    except BaseException:
                        client.close()
                        raise
        except paramiko.BadHostKeyException as error:
            raise HostKeyMismatch(
                f"{label}: host key mismatch: pinned {error.expected_key.fingerprint}, offered "
                f"{error.key.fingerprint}; refusing to connect (no command was sent)") from None
        except paramiko.AuthenticationException:
            raise Unreachable(f"{label}: SSH authentication failed for user {self.host.user!r}; "
                              "check the private key (--identity) matches the key pair", "auth", attempts,
                              time.monotonic() - started) from None
        except paramiko.SSHException as error:
            if "not found in known_hosts" in str(error):
                raise HostKeyMismatch(f"{label}: host key is not pinned; refusing to connect (no command was sent)") from None
            if "no authentication methods" in str(error).lower():  # no key given and no ssh-agent to ask
                raise Unreachable(f"{label}: no private key to offer (no --identity, no ssh-agent with a key); "
                                  "pass --identity with the lab key pair's private key", "auth", attempts,
                                  time.monotonic() - started) from None
            raise Unreachable(f"{label}: SSH failed after {attempts} attempt(s) in "
                              f"{time.monotonic() - started:.1f} s: {error}", "timeout", attempts,
                              time.monotonic() - started) from None
        except (OSError, EOFError) as error:
            refused = isinstance(error, (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError))
            why = "connection refused" if refused else f"{error.__class__.__name__}: {error}"
            raise Unreachable(f"{label}: no SSH after {attempts} attempt(s) in {time.monotonic() - started:.1f} s "
                              f"(budget {self.budget:.0f} s): {why}", "refused" if refused else "timeout", attempts,
                              time.monotonic() - started) from None
        transport = client.get_transport()
        if transport is not None:
            # Small request/response exchanges: without this each channel waits ~40 ms for
            # Nagle's algorithm against delayed ACKs.
            transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = client
        self.connect_info = ConnectInfo(attempts, round(time.monotonic() - started, 3))
        if attempts > 1:
            log.info("%s: connected after %d attempts in %.2f s", label, attempts, self.connect_info.seconds)
        return self.connect_info

    def _alive(self) -> bool:
        transport = self.client.get_transport() if self.client else None
        return bool(transport and transport.is_active())

    def run(self, command: str, timeout: float = 60.0, stdin: str | None = None) -> CommandResult:
        """Run one command on its own channel of the shared connection (threads may share it).
        `stdin` keeps secrets off the command line (and out of every report that shows it)."""
        if self.client is None or not self._alive():
            self.connect()  # reconnects within budget; raises Unreachable otherwise
        assert self.client is not None
        started = time.monotonic()
        try:
            transport = self.client.get_transport()
            assert transport is not None
            channel = transport.open_session(timeout=10)
            channel.settimeout(timeout)
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin.encode())
                channel.shutdown_write()
            stdout = channel.makefile("rb").read().decode(errors="replace")
            stderr = channel.makefile_stderr("rb").read().decode(errors="replace")
            rc = channel.recv_exit_status()
            channel.close()
        except (paramiko.SSHException, OSError, EOFError) as error:
            raise Unreachable(f"{self.host.label}: connection lost while running `{command[:60]}`: "
                              f"{error.__class__.__name__}: {error}") from None
        if rc == -1:
            raise Unreachable(f"{self.host.label}: the connection closed before `{command[:60]}` finished")
        return CommandResult(command, rc, stdout, stderr, round(time.monotonic() - started, 3), self.host.label)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

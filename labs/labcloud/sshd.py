"""A real OpenSSH sshd for one instance, on loopback, as the invoking user.

Its own host key (the one the user data's `ssh_keys` gives, as cloud-init installs it, else
one made here), authorized_keys (the instance's key pair and the user data's
`ssh_authorized_keys`, as cloud-init would install them) and server-side SetEnv: HOME, a PATH with the real aws CLI, the lab cloud's
endpoint, this instance's IMDS endpoint and the region. Clients cannot set variables.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labs.core.errors import InfraError, UsageError
from labs.core.sshconfig import quoted
from labs.labcloud.procs import PidRecord, ssh_banner, stop_pid, wait_for

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
INSTALL_HINT = "install OpenSSH's server: apt-get install openssh-server (or your distribution's package)"


def find_sshd() -> str:
    found = shutil.which("sshd") or next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)
    if not found:
        raise UsageError(f"sshd not found; {INSTALL_HINT}")
    return found


def login_user() -> str:
    """sshd runs as us, so it can only log in as us (root: any user; we still use root)."""
    return pwd.getpwuid(os.geteuid()).pw_name


def _quote(value: str) -> str:
    return '"' + value.replace('"', '') + '"'


class PortTaken(InfraError):
    """sshd could not bind its port: something took it after the port was chosen."""


@dataclass
class SshdHost:
    instance_id: str
    directory: Path
    port: int
    authorized_key: str  # one key per line
    env: dict[str, str]
    pid_dir: Path
    process: subprocess.Popen | None = None
    host_public_key: str = ""
    given_host_key: tuple[str, str] | None = None  # (private, public) from the instance's user data

    @property
    def config_file(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def home(self) -> Path:
        return self.directory / "home"

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def log_file(self) -> Path:
        return self.directory / "sshd.log"

    def prepare(self, host_key: str = "keep") -> None:
        """host_key: "keep"; "new" (a fault: the host now presents another key, the old one is
        kept aside); "restore" (the kept-aside key comes back)."""
        self.directory.mkdir(exist_ok=True)  # not parents: never re-create a stack being removed
        self.home.mkdir(exist_ok=True)
        kept = self.directory / "replaced-host-key"
        if host_key == "new" and self.host_key.exists():
            kept.mkdir(exist_ok=True)
            for path in (self.host_key, self.host_key.with_suffix(".pub")):
                path.replace(kept / path.name)
        elif host_key == "restore" and kept.is_dir():
            for path in kept.iterdir():
                path.replace(self.directory / path.name)
            kept.rmdir()
        if not self.host_key.exists() and self.given_host_key and host_key != "new":
            private, public = self.given_host_key
            fd = os.open(self.host_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(private.strip() + "\n")
            self.host_key.with_suffix(".pub").write_text(public.strip() + "\n")
        if not self.host_key.exists():  # no key in the user data, or a fault asked for another one
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.instance_id,
                            "-f", str(self.host_key)], check=True, capture_output=True)
        self.host_public_key = " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])
        # A login shell re-reads /etc/profile, which resets PATH; on Amazon Linux the aws CLI is
        # on the default PATH, so give interactive sessions the same.
        (self.home / ".bash_profile").write_text(
            f'export PATH="{self.env["PATH"].split(":", 1)[0]}:$PATH"\n[ -f ~/.bashrc ] && . ~/.bashrc\n')
        keys = self.directory / "authorized_keys"
        keys.write_text(self.authorized_key.strip() + "\n" if self.authorized_key else "")
        keys.chmod(0o600)
        setenv = " ".join(f"{k}={_quote(v)}" for k, v in {**self.env, "HOME": str(self.home)}.items())
        user = login_user()
        self.config_file.write_text("\n".join([
            f"# rolelab host {self.instance_id}",
            f"ListenAddress 127.0.0.1:{self.port}",
            # Quoted (ROLELAB_HOME may hold spaces); AuthorizedKeysFile also expands %-tokens.
            f"HostKey {quoted(str(self.host_key), tokens=False)}",
            f"AuthorizedKeysFile {quoted(str(keys))}",
            f"PidFile {quoted(str(self.directory / 'sshd.pid'), tokens=False)}",
            f"AllowUsers {user}",
            "PermitRootLogin prohibit-password" if user == "root" else "PermitRootLogin no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # its files may live under a world-writable temp directory
            "PermitUserEnvironment no",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTunnel no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "MaxStartups 64:30:128",
            "MaxSessions 32",
            "LogLevel INFO",
            f"SetEnv {setenv}",
            "Subsystem sftp internal-sftp",
            "",
        ]))

    def start(self, timeout: float = 10.0) -> None:
        sshd = find_sshd()
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0  # sshd -E appends
        self.process = subprocess.Popen(
            [sshd, "-D", "-f", str(self.config_file), "-E", str(self.log_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches the lab cloud, which stops us in order
        )
        self.record().write(self.pid_dir, f"sshd-{self.instance_id}")
        # Ready when *this* sshd says it listens (a banner alone could come from whoever took the port).
        listening = f"Server listening on 127.0.0.1 port {self.port}."

        def ready() -> bool:
            return listening in self._log_since(log_start) and ssh_banner(self.port) is not None

        if not wait_for(lambda: self.process.poll() is not None or ready(), timeout):
            self.stop()
            raise InfraError(f"sshd for {self.instance_id} did not answer on 127.0.0.1:{self.port} "
                             f"within {timeout:.0f} s; see {self.log_file}")
        if self.process.poll() is not None:
            tail = self._log_since(log_start)[-300:]
            code = self.process.returncode
            self.stop()  # forget its PID record: nothing of it is left to clean up
            error = PortTaken if "Address already in use" in tail else InfraError
            raise error(f"sshd for {self.instance_id} exited ({code}): {tail.strip()}")

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def record(self) -> PidRecord:
        assert self.process is not None
        return PidRecord(self.process.pid, str(self.config_file), "sshd", self.port)

    def stop(self, hard: bool = False) -> None:
        """Stop the listener and every session below it; hard=True is a crash (SIGKILL at once)."""
        if self.process is None:
            return
        stop_pid(self.record(), grace=2.0, hard=hard)
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        (self.pid_dir / f"sshd-{self.instance_id}.json").unlink(missing_ok=True)
        self.process = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None

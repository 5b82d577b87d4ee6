"""Where a local stack keeps its state: keys, PIDs, hosts, outputs. Outside the repo."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from labs.core.errors import UsageError
from labs.core.logs import rolelab_home

DEFAULT_STACK = "local"
_STACK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def check_stack_name(stack: str) -> str:
    if not _STACK_NAME.fullmatch(stack):
        raise UsageError(f"--stack {stack!r}: a stack name is 1..40 of a-z, 0-9, '-' and '_'; e.g. --stack local")
    return stack


@dataclass(frozen=True)
class StackPaths:
    stack: str
    root: Path

    @classmethod
    def for_stack(cls, stack: str = DEFAULT_STACK, home: Path | None = None) -> StackPaths:
        check_stack_name(stack)
        base = home or rolelab_home()
        if base.exists() and not base.is_dir():
            raise UsageError(f"ROLELAB_HOME {base} is not a directory; point ROLELAB_HOME at a directory (or unset it)")
        return cls(stack, base / "stacks" / stack)

    @property
    def cloud_file(self) -> Path:  # written by the lab cloud once it is ready
        return self.root / "cloud.json"

    @property
    def pids(self) -> Path:  # one file per process we started, for cleanup after a crash
        return self.root / "pids"

    @property
    def hosts(self) -> Path:
        return self.root / "hosts"

    @property
    def private_key(self) -> Path:
        return self.root / "keys" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def operator_credentials(self) -> Path:
        return self.root / "operator-credentials"

    @property
    def control_token(self) -> Path:  # 0600: opens moto's admin routes (labs.labcloud.gate); no host has it
        return self.root / "control-token"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs.json"

    @property
    def config(self) -> Path:  # the config the stack was brought up with
        return self.root / "config.json"

    def recorded_config(self) -> dict:
        """The config `local up` recorded; a damaged file is the user's to clear, not a bug."""
        try:
            data = json.loads(self.config.read_text())
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("values"), dict):
            raise UsageError(f"{self.config} is damaged or unreadable; run `rolelab local down --stack {self.stack}` "
                             "and bring the stack up again")
        return data

    @property
    def resources(self) -> Path:  # what the local engine created
        return self.root / "resources.json"

    @property
    def cloud_log(self) -> Path:
        return self.root.parent.parent / "logs" / f"cloud-{self.stack}.log"

    @property
    def lock_file(self) -> Path:  # outside the stack dir: it outlives a removed (or deleted) state
        return self.root.parent.parent / "locks" / f"{self.stack}.lock"

    def host_dir(self, instance_id: str) -> Path:
        return self.hosts / instance_id

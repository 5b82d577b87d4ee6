"""The boundary to the real Pulumi CLI (aws mode). Everything past it is tested offline."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence

from labs.core import outputs as lab_outputs
from labs.core.errors import InfraError, UsageError
from labs.provision.mockrun import PROJECT_DIR

INSTALL_HINT = "install the Pulumi CLI (https://www.pulumi.com/docs/install/) or pass --outputs FILE"


def pulumi_binary() -> str:
    found = shutil.which("pulumi")
    if not found:
        raise UsageError(f"the pulumi CLI is not on PATH; {INSTALL_HINT}")
    return found


def command(args: Sequence[str], stack: str | None) -> list[str]:
    """The exact argv we run: always in the project directory, never interactive."""
    argv = [pulumi_binary(), *args, "--non-interactive", "--cwd", str(PROJECT_DIR)]
    if stack:
        argv += ["--stack", stack]
    return argv


def run(args: Sequence[str], stack: str | None, capture: bool = False, timeout: float | None = None) -> str:
    argv = command(args, stack)
    try:
        done = subprocess.run(argv, capture_output=capture, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InfraError(f"`{' '.join(argv[1:3])}` did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        detail = (done.stderr or "").strip().splitlines()[-1:] if capture else []
        raise InfraError(f"`pulumi {' '.join(args)}` failed (exit {done.returncode})"
                         + (f": {detail[0]}" if detail else ""))
    return done.stdout or ""


def stack_outputs(stack: str | None) -> lab_outputs.LabOutputs:
    text = run(["stack", "output", "--json"], stack, capture=True, timeout=120)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise InfraError("`pulumi stack output --json` did not print JSON") from None
    return lab_outputs.from_dict(data, f"pulumi stack output ({stack or 'current stack'})")

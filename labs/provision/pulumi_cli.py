"""The boundary to the real Pulumi CLI (aws mode). Everything past it is tested offline.

pulumi runs in a session of its own, so a Ctrl-C at the terminal reaches rolelab only. On
Ctrl-C or a timeout rolelab sends it one SIGINT and waits for it to cancel: a killed
`pulumi up` leaves the stack locked, and the destroy that follows would fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO

from labs.core import outputs as lab_outputs
from labs.core.errors import InfraError, UsageError
from labs.provision.mockrun import PROJECT_DIR

INSTALL_HINT = "install the Pulumi CLI (https://www.pulumi.com/docs/install/) or pass --outputs FILE"
CANCEL_BUDGET = 15 * 60.0  # a cancelling `pulumi up` finishes the operations in flight (an instance: minutes)
# Pulumi's own words for a passphrase-protected (local or S3) backend without the passphrase.
PASSPHRASE_MARKERS = ("PULUMI_CONFIG_PASSPHRASE", "incorrect passphrase")
PASSPHRASE_FIX = ("this stack's backend is protected by a passphrase: export PULUMI_CONFIG_PASSPHRASE (or "
                  "PULUMI_CONFIG_PASSPHRASE_FILE) with the one chosen at `pulumi stack init`, then run again")
LOCKED_MARKERS = ("currently locked", "another update is currently in progress", "conflict")

Say = Callable[[str], None]


def _stderr_say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class PulumiFailed(InfraError):
    """`pulumi <verb>` exited non-zero; `tail` is the end of what it printed on stderr."""

    def __init__(self, message: str, tail: str = ""):
        super().__init__(message)
        self.tail = tail

    @property
    def locked(self) -> bool:
        return any(marker in self.tail.lower() for marker in LOCKED_MARKERS)


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


def _pump(stream: IO[str], keep: deque[str] | list[str], echo: IO[str] | None) -> None:
    for line in stream:
        keep.append(line)
        if echo is not None:
            echo.write(line)
            echo.flush()


def _cancel(process: subprocess.Popen, budget: float, say: Say) -> None:
    """One SIGINT, then wait for pulumi to cancel; never SIGKILL (that would leave the stack locked)."""
    if process.poll() is not None:
        return
    say(f"   asking pulumi (pid {process.pid}) to cancel with one SIGINT; waiting for it to finish cleanly")
    process.send_signal(signal.SIGINT)
    previous = signal.signal(signal.SIGINT, lambda *_: say(
        "   pulumi is cancelling and must finish; interrupting it would leave the stack locked"))
    try:
        process.wait(budget)
    except subprocess.TimeoutExpired:
        say(f"   pulumi (pid {process.pid}) is still cancelling after {budget:.0f} s; it was left running "
            "(killing it would lock the stack)")
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args: Sequence[str], stack: str | None, capture: bool = False, timeout: float | None = None,
        say: Say = _stderr_say, cancel_budget: float | None = None) -> str:
    """Run `pulumi args`; its stderr is shown live (unless captured) and its tail kept for the error line."""
    argv = command(args, stack)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    out: list[str] = []
    tail: deque[str] = deque(maxlen=40)
    readers = [threading.Thread(target=_pump, args=(process.stderr, tail, None if capture else sys.stderr),
                                daemon=True)]
    if capture:
        readers.append(threading.Thread(target=_pump, args=(process.stdout, out, None), daemon=True))
    for reader in readers:
        reader.start()
    shown = f"pulumi {' '.join(args)}"
    budget = CANCEL_BUDGET if cancel_budget is None else cancel_budget
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        _cancel(process, budget, say)
        raise InfraError(f"`{shown}` did not finish within {timeout:.0f} s; it was cancelled") from None
    except KeyboardInterrupt:
        _cancel(process, budget, say)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
    stderr = "".join(tail)
    if code != 0:
        if any(marker in stderr for marker in PASSPHRASE_MARKERS):
            raise UsageError(f"`{shown}`: {PASSPHRASE_FIX}")
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        detail = (errors or lines)[-1:] if lines else []
        raise PulumiFailed(f"`{shown}` failed (exit {code})" + (f": {detail[0]}" if detail else ""), stderr)
    return "".join(out)


def stack_outputs(stack: str | None) -> lab_outputs.LabOutputs:
    text = run(["stack", "output", "--json"], stack, capture=True, timeout=120)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise InfraError("`pulumi stack output --json` did not print JSON") from None
    return lab_outputs.from_dict(data, f"pulumi stack output ({stack or 'current stack'})")


def stack_config(stack: str | None) -> dict[str, str]:
    """The stack's config as {'aws:region': 'us-east-1', 'rolelab:students': '3', ...} (secrets left out)."""
    text = run(["config", "--json"], stack, capture=True, timeout=120)
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise InfraError("`pulumi config --json` did not print JSON") from None
    return {key: str(entry.get("value", "")) for key, entry in data.items()
            if isinstance(entry, dict) and not entry.get("secret") and "value" in entry}


def backend_check() -> tuple[bool, str]:
    """(ok, line): who `pulumi whoami` is logged in as, and whether a passphrase backend has its passphrase."""
    try:
        text = run(["whoami", "--verbose"], None, capture=True, timeout=60)
    except UsageError as error:
        return False, str(error)
    except InfraError as error:
        return False, f"{error}; log in with `pulumi login` (or `pulumi login --local`)"
    url = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.strip().lower().startswith("backend url")), text.strip())
    passphrase_backend = not url.startswith(("https://", "http://"))  # file://, s3://, gs://, azblob://
    if passphrase_backend and not (os.environ.get("PULUMI_CONFIG_PASSPHRASE") is not None
                                   or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
        return False, f"backend {url} needs the passphrase: {PASSPHRASE_FIX}"
    return True, f"backend {url}"


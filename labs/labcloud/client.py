"""Starting, asking and stopping a stack's lab cloud process, from the CLI's side.

This module (with paths, procs and aws_clients) is the lab cloud's public face: nothing
outside labs.labcloud imports its internals (an import-linter contract says so).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from labs.core.errors import InfraError
from labs.labcloud.aws_clients import ClientFactory, available_regions, keep_models, require_loopback, warm_clients
from labs.labcloud.paths import StackPaths
from labs.labcloud.procs import PidRecord, is_ours, reap, stop_pid, wait_for
from labs.labcloud.seed import OperatorCredentials
from labs.labcloud.sshd import find_sshd

__all__ = ["CloudClient", "ClientFactory", "OperatorCredentials", "available_regions", "find_sshd", "keep_models",
           "require_loopback", "warm_clients"]

log = logging.getLogger("rolelab.cloud.client")
PROJECT_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


class CloudClient:
    def __init__(self, paths: StackPaths):
        self.paths = paths

    # -- what is there ------------------------------------------------------------------

    def info(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.paths.cloud_file.read_text())
        except (OSError, ValueError):
            return None

    def cloud_record(self) -> PidRecord | None:
        return next((r for _, r in PidRecord.read_all(self.paths.pids) if r.role == "cloud"), None)

    def alive(self) -> bool:
        record = self.cloud_record()
        return bool(record and is_ours(record) and self.info())

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> Any:
        info = self.info()
        if info is None:
            raise InfraError(f"the lab cloud of stack {self.paths.stack!r} is not running; "
                             f"start it with `rolelab local up --stack {self.paths.stack}`")
        url = require_loopback(info["control"]) + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}").get("error", error.reason)
            raise InfraError(f"lab cloud {method} {path}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            raise InfraError(f"lab cloud of stack {self.paths.stack!r} did not answer ({error}); "
                             f"see {self.paths.cloud_log}") from None

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/status")

    def moto_api(self, path: str, timeout: float = 10.0) -> bytes:
        """GET one of moto's admin routes (/moto-api/...): closed to all but the holder of the control token."""
        from labs.labcloud.gate import CONTROL_HEADER

        info = self.info()
        if info is None:
            raise InfraError(f"the lab cloud of stack {self.paths.stack!r} is not running")
        req = urllib.request.Request(require_loopback(info["endpoint"]) + path,
                                     headers={CONTROL_HEADER: self.paths.control_token.read_text().strip()})
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.read()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, region: str) -> dict[str, Any]:
        return self.wait_started(self.spawn(region))

    def spawn(self, region: str) -> subprocess.Popen:
        """Start the lab cloud and return at once; `wait_started` awaits it (the caller works meanwhile)."""
        self.paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.paths.cloud_log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])))
        with open(self.paths.cloud_log, "ab") as log_handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "labs.labcloud.server", "--state-dir", str(self.paths.root),
                 "--stack", self.paths.stack, "--region", region],
                stdin=subprocess.DEVNULL, stdout=log_handle, stderr=log_handle, cwd=str(PROJECT_DIR), env=env,
                start_new_session=True,  # a terminal's Ctrl-C reaches us; we stop it in order
            )
        PidRecord(process.pid, str(self.paths.root), "cloud").write(self.paths.pids, "cloud")
        return process

    def wait_started(self, process: subprocess.Popen) -> dict[str, Any]:
        ready = wait_for(lambda: process.poll() is not None or self._healthy(), START_TIMEOUT)
        if not ready or process.poll() is not None:
            self.stop()
            tail = _tail(self.paths.cloud_log)
            raise InfraError(f"the lab cloud did not start (exit {process.poll()}): {tail}; see {self.paths.cloud_log}")
        info = self.info()
        assert info is not None
        log.info("lab cloud %s up: pid %s, %s", self.paths.stack, info["pid"], info["endpoint"])
        return info

    def _healthy(self) -> bool:
        if self.info() is None:
            return False
        try:
            return bool(self.request("GET", "/health", timeout=1.0).get("ok"))
        except InfraError:
            return False

    def stop(self) -> list[PidRecord]:
        """Stop the cloud gracefully, then anything it left, by recorded PID. Returns what was killed."""
        record = self.cloud_record()
        if record and is_ours(record) and self.info():
            try:
                self.request("POST", "/shutdown", timeout=3.0)
                wait_for(lambda: (reap(record.pid), not is_ours(record))[1], 15.0)
            except InfraError:
                pass
        killed = []
        # sshds first (children of a crashed cloud), then the cloud itself if it still lingers.
        for path, leftover in sorted(PidRecord.read_all(self.paths.pids), key=lambda item: item[1].role == "cloud"):
            if stop_pid(leftover):
                killed.append(leftover)
            path.unlink(missing_ok=True)
        return killed


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"

"""The lab cloud process: `python -m labs.labcloud.server --state-dir DIR --stack S --region R`.

One per stack. It hosts moto (IAM enforced, AWS's managed policies loaded), bootstraps
the operator, seeds the account, materializes hosts from EC2 state, and answers a small
control API. It writes cloud.json when ready and removes it when it stops.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

ACCOUNT_ID = "123456789012"  # moto's default account


def _enforce_iam_before_moto_loads() -> None:
    # moto reads these when imported: enforce auth from the first request, load real managed policies.
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)


class GatedMotoServer:
    """moto's WSGI app behind the gate (labs.labcloud.gate), on a free loopback port, in a thread."""

    def __init__(self, checks):
        self.checks = checks

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        from labs.labcloud.gate import Gate, OneAtATime

        app = OneAtATime(Gate(DomainDispatcherApplication(create_backend_app), self.checks), ["RunInstances"])
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        threading.Thread(target=self._server.serve_forever, name="moto", daemon=True).start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), port


def write_private(path: Path, text: str) -> None:
    """Mode 0600 from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class LabCloud:
    def __init__(self, state_dir: Path, stack: str, region: str):
        from labs.labcloud.paths import StackPaths

        self.paths = StackPaths(stack, state_dir)
        self.region = region
        self.stopped = threading.Event()
        self.started_at = time.time()

    def start(self) -> dict:
        from labs.labcloud.aws_clients import ClientFactory
        from labs.labcloud.control import ControlServer
        from labs.labcloud.gate import moto_admin_needs_token, no_builtin_imds
        from labs.labcloud.hosts import HostManager
        from labs.labcloud.metadata import CredentialMinter
        from labs.labcloud.scope import ConsoleScope
        from labs.labcloud.seed import bootstrap_operator, seed

        log = logging.getLogger("rolelab.cloud")
        token = secrets.token_urlsafe(32)
        write_private(self.paths.control_token, token)  # before moto listens: only the CLI can read it
        # exercise mode: a student's console touches only that student's instances and roles
        self.moto = GatedMotoServer([moto_admin_needs_token(token), no_builtin_imds,
                                     ConsoleScope(ACCOUNT_ID, self.region)])
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        operator = bootstrap_operator(ACCOUNT_ID)
        operator.write(self.paths.operator_credentials)
        seed(ClientFactory(self.endpoint, self.region, operator.access_key_id, operator.secret_access_key))
        self.minter = CredentialMinter(ACCOUNT_ID, self.region)
        self.hosts = HostManager(ACCOUNT_ID, self.region, self.endpoint, self.paths.hosts, self.paths.pids,
                                 self.minter)
        from labs.labcloud.propagation import Propagation

        self.propagation = Propagation(ACCOUNT_ID)
        self.hosts.metadata.view = self.propagation.view
        self.hosts.delayed = lambda: self.propagation.delay > 0
        self.hosts.start()
        from labs.labcloud.faults import fault_routes

        self.control = ControlServer({
            ("GET", "/health"): lambda _: {"ok": True},
            ("GET", "/status"): lambda _: self.status(),
            ("POST", "/reconcile"): lambda _: (self.hosts.reconcile(), {"ok": True})[1],
            ("POST", "/shutdown"): lambda _: (self.stopped.set(), {"ok": True})[1],
            **fault_routes(self.hosts, self.minter, self.propagation),
        })
        self.control.start()
        info = self.status(hosts=False)
        tmp = self.paths.cloud_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(self.paths.cloud_file)
        log.info("lab cloud %s ready in %.2f s at %s", self.paths.stack, time.time() - self.started_at, self.endpoint)
        return info

    def status(self, hosts: bool = True) -> dict:
        info = {
            "pid": os.getpid(),
            "stack": self.paths.stack,
            "region": self.region,
            "account": ACCOUNT_ID,
            "endpoint": self.endpoint,
            "control": f"http://127.0.0.1:{self.control.port}",
            "operator_credentials": str(self.paths.operator_credentials),
            "state_dir": str(self.paths.root),
            "started_at": self.started_at,
            "credential_lifetime": self.minter.lifetime,
            "credential_rotate_every": self.minter.rotate_every,
            "iam_delay": self.propagation.delay,
        }
        if hosts:
            info["hosts"] = self.hosts.describe()
        return info

    def stop(self) -> None:
        # moto's server thread ends with the process; waiting for its poll loop only costs time.
        for step in (self.hosts.stop, self.control.stop, self.propagation.stop):
            try:
                step()
            except Exception:  # noqa: BLE001 keep stopping the rest
                logging.getLogger("rolelab.cloud").exception("stop step failed")
        self.paths.cloud_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labs.labcloud.server")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args(argv)
    _enforce_iam_before_moto_loads()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    cloud = LabCloud(args.state_dir, args.stack, args.region)
    signal.signal(signal.SIGTERM, lambda *_: cloud.stopped.set())
    signal.signal(signal.SIGINT, lambda *_: cloud.stopped.set())
    try:
        cloud.start()
        cloud.stopped.wait()
    finally:
        if hasattr(cloud, "hosts"):
            cloud.stop()
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    # Everything we started is stopped; tearing down moto's interpreter state would only add ~0.7 s.
    os._exit(code)

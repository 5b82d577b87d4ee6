"""Switches for tests: what goes wrong with real hosts and real IAM, on demand."""

from __future__ import annotations

from typing import Any


def fault_routes(hosts, minter, propagation) -> dict[tuple[str, str], Any]:
    """Routes over the cloud's parts (passed in, so this module never imports the server)."""

    def sshd(body: dict) -> dict:
        action, instance_id = body["action"], body["instance_id"]
        if action in ("kill", "crash"):
            hosts.kill_sshd(instance_id, hard=action == "crash")
        elif action == "restart":
            hosts.restart_sshd(instance_id, float(body.get("delay", 0)), str(body.get("host_key", "keep")))
        else:
            raise ValueError(f"unknown sshd action {action!r}")
        return {"ok": True}

    def imds(body: dict) -> dict:
        hosts.set_imds(body["instance_id"], body["mode"], float(body.get("delay", 0)))
        return {"ok": True}

    def credentials(body: dict) -> dict:
        minter.configure(int(body["lifetime"]), int(body["rotate_every"]))
        return {"ok": True}

    def iam_delay(body: dict) -> dict:
        propagation.set_delay(float(body["seconds"]))
        return {"ok": True}

    return {
        ("POST", "/faults/iam-delay"): iam_delay,
        ("POST", "/faults/sshd"): sshd,
        ("POST", "/faults/imds"): imds,
        ("POST", "/settings/credentials"): credentials,
    }

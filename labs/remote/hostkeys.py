"""Pinned host keys: from the outputs' known_hosts (local), or from the console output (aws).

On EC2, cloud-init prints the instance's host keys to the serial console between
`-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----`; reading them
through the EC2 API is the trustworthy way to learn them before the first connection.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import paramiko

from labs.core.errors import InfraError

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"


def known_host_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def keys_from_console(text: str) -> list[tuple[str, str]]:
    """[(key type, base64 blob)] from a console output's host-key block (empty if absent)."""
    if BEGIN not in text or END not in text:
        return []
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    keys = []
    for line in block.splitlines():
        parts = line.strip().split()
        if len(parts) >= 2 and (parts[0].startswith("ssh-") or parts[0].startswith("ecdsa-")):
            keys.append((parts[0], parts[1]))
    return keys


def host_keys_from_lines(lines: list[tuple[str, str]], address: str, port: int) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    for key_type, blob in lines:
        try:
            key = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
        except Exception:  # noqa: BLE001 an unknown key type on the console is not fatal
            continue
        keys.add(known_host_name(address, port), key_type, key)
    return keys


def pinned_from_ec2(ec2, instance_id: str, address: str, port: int = 22) -> paramiko.HostKeys:
    """aws mode: the host's keys from its console output, through the EC2 API."""
    return console_host_keys(lambda iid: ec2.get_console_output(InstanceId=iid, Latest=True).get("Output", ""),
                             instance_id, address, port)


def console_host_keys(get_console_output: Callable[[str], str], instance_id: str, address: str, port: int = 22,
                      budget: float = 300.0, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> paramiko.HostKeys:
    """Poll the console output until cloud-init has printed the host keys (it takes a few minutes)."""
    start, delay = clock(), 5.0
    while True:
        lines = keys_from_console(get_console_output(instance_id))
        if lines:
            return host_keys_from_lines(lines, address, port)
        if clock() - start + delay > budget:
            raise InfraError(f"{instance_id}: no SSH host keys in the console output after {budget:.0f} s; "
                             "cloud-init may still be booting: retry in a minute (EC2 updates it with a delay)")
        sleep(delay)
        delay = min(delay * 1.5, 30.0)

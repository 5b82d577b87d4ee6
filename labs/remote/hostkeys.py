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
        # cloud-init may prefix console lines (e.g. "ci-info: " or a timestamp): find the key type anywhere
        parts = line.strip().split()
        for index, word in enumerate(parts[:-1]):
            if word.startswith(("ssh-", "ecdsa-")):
                keys.append((word, parts[index + 1]))
                break
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


def console_reader(ec2) -> Callable[[str], str]:
    """The latest console output (Nitro only); other types refuse Latest, so ask again without it.
    Any botocore error becomes one InfraError line (exit 3), never a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    def read(instance_id: str) -> str:
        try:
            try:
                return ec2.get_console_output(InstanceId=instance_id, Latest=True).get("Output", "") or ""
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("UnsupportedOperation", "InvalidParameterValue",
                                                                        "InvalidParameterCombination"):
                    raise
                return ec2.get_console_output(InstanceId=instance_id).get("Output", "") or ""
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise InfraError(f"{instance_id}: reading its console output for the SSH host keys failed ({code}); "
                             "you need ec2:GetConsoleOutput in the instance's region") from None
        except BotoCoreError as error:
            raise InfraError(f"{instance_id}: the EC2 API did not answer for its console output "
                             f"({error.__class__.__name__}); retry") from None

    return read


def pinned_from_ec2(ec2, instance_id: str, address: str, port: int = 22) -> paramiko.HostKeys:
    """aws mode: the host's keys from its console output, through the EC2 API."""
    return console_host_keys(console_reader(ec2), instance_id, address, port)


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

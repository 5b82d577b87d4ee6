"""Pinned host keys: from the outputs' known_hosts (local), or in aws mode from the outputs'
`host_key` (the key the program made and cloud-init installed), with the console as a cross-check.

On EC2, cloud-init prints the instance's host keys to the serial console between
`-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----`. Outputs without a
`host_key` (written before the program made host keys) are pinned from that block alone; with
one, a single look at the console (never a wait) catches a host that disagrees with the state.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable

import paramiko

from labs.core.errors import InfraError, LabWrong
from labs.core.outputs import HostRecord

log = logging.getLogger("rolelab.hostkeys")

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"


class HostKeyMismatch(LabWrong):
    """The host presented (or its console shows) a key other than the pinned one: refuse, send nothing."""


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


def fingerprint(key_type: str, blob: str) -> str:
    return paramiko.PKey.from_type_string(key_type, base64.b64decode(blob)).fingerprint


def pinned_from_outputs(host: HostRecord) -> paramiko.HostKeys:
    """The host key the program made, as the outputs carry it (known before the host booted)."""
    assert host.host_key, host.label
    key_type, blob = host.host_key.split()
    return host_keys_from_lines([(key_type, blob)], host.address, host.port)


def cross_check(host: HostRecord, console_text: str) -> None:
    """The console's key of the outputs' type must be the outputs' key; a console without one says nothing."""
    assert host.host_key, host.label
    key_type, blob = host.host_key.split()
    shown = [b for t, b in keys_from_console(console_text) if t == key_type]
    if shown and blob not in shown:
        raise HostKeyMismatch(
            f"{host.label} ({host.instance_id}): its console output shows host key {fingerprint(key_type, shown[0])}, "
            f"but the outputs pin {fingerprint(key_type, blob)}; refusing to connect (no command was sent). "
            "Was the instance replaced or re-keyed outside Pulumi? Run `pulumi refresh`, `pulumi up`, then "
            "re-create the outputs with `pulumi stack output --json`")


def pinned_for_aws(host: HostRecord, get_console_output: Callable[[str], str] | None) -> paramiko.HostKeys:
    """aws mode: the outputs' host key, cross-checked with one look at the console (best effort: an unreadable
    or not yet written console is no evidence); without one in the outputs, the console's keys (polled)."""
    if not host.host_key:
        if get_console_output is None:
            raise InfraError(f"{host.label}: the outputs carry no host key and the EC2 API is not available to read "
                             "it from the console output; re-create the outputs with `pulumi stack output --json`")
        return console_host_keys(get_console_output, host.instance_id, host.address, host.port)
    if get_console_output is not None:
        try:
            text = get_console_output(host.instance_id)
        except InfraError as error:
            log.info("%s: no console cross-check of the host key (%s)", host.label, error)
        else:
            cross_check(host, text)
    return pinned_from_outputs(host)

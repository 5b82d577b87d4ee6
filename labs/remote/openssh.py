"""The exact OpenSSH command for a host of the outputs: pinned keys, no agent, no prompts."""

from __future__ import annotations

import shlex
from pathlib import Path

from labs.core.outputs import HostRecord, LabOutputs
from labs.core.sshconfig import quoted


def openssh_argv(outputs: LabOutputs, host: HostRecord, identity: str | None = None,
                 command: list[str] | None = None) -> list[str]:
    key = identity or outputs.private_key_path
    argv = ["ssh", "-p", str(host.port), "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
    if outputs.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={quoted(outputs.known_hosts)}"]
    if key:
        # Not -i: ssh stats -i's path literally but then expands its %-tokens, so a path with
        # '%' cannot work there; as an option it is quoted and escaped like any other.
        argv += ["-o", f"IdentityFile={quoted(str(Path(key).expanduser()))}"]
    # `--`: whatever the outputs say, the destination can never be read as an option.
    argv += ["--", f"{host.user}@{host.address}"]
    if command:
        # One argument is a shell line as typed ("aws iam list-users | head"); several are
        # words, quoted so that --query 'Roles[].RoleName' arrives intact.
        argv.append(command[0] if len(command) == 1 else shlex.join(command))
    return argv


def shell_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)

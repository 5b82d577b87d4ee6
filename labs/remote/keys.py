"""The SSH private key a session signs with: read once, decrypted with ROLELAB_KEY_PASSPHRASE.

An encrypted key is usable three ways: the variable holds its passphrase, ssh-agent holds the
key (found by its .pub beside it), or neither, which is a usage error saying both fixes. The
passphrase is never logged, printed or put in an error message.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import paramiko

from labs.core.errors import UsageError

PASSPHRASE_VAR = "ROLELAB_KEY_PASSPHRASE"


def _public_blob(path: Path) -> bytes | None:
    """The key's public half from `<key>.pub` (OpenSSH keeps one beside every key it makes)."""
    try:
        fields = Path(f"{path}.pub").read_text().split()
        return base64.b64decode(fields[1]) if len(fields) >= 2 else None
    except (OSError, ValueError):
        return None


def agent_holds(path: Path) -> bool:
    """True when a running ssh-agent offers this key (so it need not be decrypted here)."""
    blob = _public_blob(path)
    if blob is None or not os.environ.get("SSH_AUTH_SOCK"):
        return False
    agent = paramiko.Agent()
    try:
        return any(key.asbytes() == blob for key in agent.get_keys())
    except paramiko.SSHException:
        return False
    finally:
        agent.close()


def load_private_key(path: str) -> paramiko.PKey | None:
    """The key, decrypted if need be; None when only ssh-agent can sign with it (encrypted, held there)."""
    key = Path(path).expanduser()
    try:
        return paramiko.PKey.from_path(key)
    except TypeError:  # cryptography asks for the password: the key is encrypted
        pass
    except (ValueError, paramiko.SSHException, paramiko.UnknownKeyType, OSError) as error:
        raise UsageError(f"private key {key}: not a private key rolelab can read ({error.__class__.__name__}); "
                         "pass --identity with an OpenSSH or PEM private key (RSA or ED25519)") from None
    passphrase = os.environ.get(PASSPHRASE_VAR)
    if not passphrase:
        if agent_holds(key):
            return None
        raise UsageError(f"private key {key} is encrypted; export {PASSPHRASE_VAR} with its passphrase "
                         f"(or add it to ssh-agent: ssh-add {key})")
    try:
        return paramiko.PKey.from_path(key, passphrase.encode())
    except (TypeError, ValueError, paramiko.SSHException):
        raise UsageError(f"private key {key}: {PASSPHRASE_VAR} is not its passphrase; export the right one "
                         f"(or add the key to ssh-agent: ssh-add {key})") from None

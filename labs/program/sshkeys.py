"""OpenSSH public keys as EC2 key pairs take them: one line, RSA or ED25519."""

from __future__ import annotations

import base64
import binascii

_KEY_TYPES = ("ssh-ed25519", "ssh-rsa")  # all EC2 key pairs accept


def public_key_problem(text: str) -> tuple[str, str, str] | None:
    """(what to show, problem, fix) when `text` is not an OpenSSH RSA or ED25519 public key, else None."""
    if "PRIVATE KEY" in text:
        return ("<a private key>", "this is a private key",
                "give the public key (the .pub file); the private key never enters the program")
    parts = text.split()
    if not parts:
        return "", "no key given", "paste one line such as 'ssh-ed25519 AAAA... you@host' (the .pub file)"
    if parts[0].startswith("ecdsa-") or parts[0].startswith("sk-"):
        return (parts[0], "EC2 key pairs accept RSA and ED25519 keys only",
                "make one with ssh-keygen -t ed25519 and give its .pub file")
    try:
        blob = base64.b64decode(parts[1], validate=True) if len(parts) >= 2 else b""
    except binascii.Error:
        blob = b""
    if parts[0] not in _KEY_TYPES or len(blob) < 4 or parts[0].encode() not in blob[:40] or "\n" in text:
        return (text[:24] + "...", "not an OpenSSH public key",
                "paste one line such as 'ssh-ed25519 AAAA... you@host' (the .pub file)")
    return None

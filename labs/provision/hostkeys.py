"""What pulumi-tls's PrivateKey (algorithm ED25519) answers, made here for the mock runtimes.

The local engine makes a real, random key (the lab cloud's sshd then serves it); the plan's
fake cloud derives one from the resource's name, so unit tests and plans are repeatable.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"


def private_key_state(inputs: dict, seed: bytes | None = None) -> dict:
    """The resource's state: its inputs and the key in OpenSSH and PEM forms (camelCase, as the provider's)."""
    algorithm = str(inputs.get("algorithm", "RSA")).upper()
    if algorithm != "ED25519":
        raise ValueError(f"the lab makes ED25519 host keys only, not {algorithm}")
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()) if seed else Ed25519PrivateKey.generate()
    public = key.public_key()
    public_openssh = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    raw_public = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = base64.b64decode(public_openssh.split()[1])
    return {
        **inputs,
        "algorithm": "ED25519",
        "privateKeyOpenssh": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                               serialization.NoEncryption()).decode(),
        "privateKeyPem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode(),
        "publicKeyOpenssh": public_openssh + "\n",
        "publicKeyPem": public.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        "publicKeyFingerprintMd5": ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest()),  # noqa: S324 (as ssh shows it)
        "publicKeyFingerprintSha256": "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="),
        "ecdsaCurve": "P224",
        "rsaBits": 2048,
        "id": hashlib.sha1(raw_public).hexdigest(),  # noqa: S324 (the provider's id is a hash of the key)
    }

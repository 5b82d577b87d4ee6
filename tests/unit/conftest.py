"""Unit tests run the real __main__.py under deterministic Pulumi mocks: no processes, no network."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from labs.provision.converging import ATTACHMENT, INSTANCE, KEY_PAIR, PROFILE, ROLE, SECURITY_GROUP  # noqa: F401
from labs.provision.fakecloud import FakeCloud
from labs.provision.mockrun import ProgramRun, Registration, run_program
from labs.provision.plan import PLACEHOLDERS


@pytest.fixture
def run_lab() -> Callable[..., ProgramRun]:
    def run(stack: str = "unit", region: str = "us-east-1", **config: str) -> ProgramRun:
        values = {"sshCidr": "198.51.100.7/32", "sshPublicKey": PLACEHOLDERS["sshPublicKey"], **config}
        return run_program(FakeCloud(), values, stack=stack, region=region)

    return run


def host_kind(reg: Registration) -> str:
    """'student01-with-role-instance' -> 'with-role' (the logical name is the contract here)."""
    for kind in ("no-role", "with-role", "imdsv1"):
        if reg.name.endswith(f"-{kind}-instance"):
            return kind
    raise AssertionError(f"unexpected instance name {reg.name}")


def secret_value(value: object) -> str:
    """The plain value of a Pulumi secret input (as mocks receive it); fails if it is not a secret."""
    from pulumi.runtime import rpc

    assert isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig, \
        f"not a Pulumi secret: {str(value)[:80]!r}"
    return value["value"]


def trust_statements(reg: Registration) -> list[dict]:
    return json.loads(reg.inputs["assumeRolePolicy"])["Statement"]

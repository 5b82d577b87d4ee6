"""AWS errors nothing else handled reach a person as one line and an exit code they can act on, never 70."""

from __future__ import annotations

import importlib

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from labs.core.awserrors import NO_CREDENTIALS_FIX

cli = importlib.import_module("labs.cli.main")  # the module (the package exports `main`, the function)
DENIED = ClientError({"Error": {"Code": "AccessDenied", "Message": "not for you"}}, "ListRoles")


@pytest.mark.parametrize(("error", "code", "says"), [
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"), 3, "did not answer"),
    (ConnectTimeoutError(endpoint_url="http://127.0.0.1:9/"), 3, "did not answer"),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:9/"), 3, "did not answer"),
    (DENIED, 3, "ListRoles: AccessDenied: not for you"),
    (NoCredentialsError(), 2, NO_CREDENTIALS_FIX),
], ids=["endpoint", "connect-timeout", "read-timeout", "client-error", "no-credentials"])
def test_an_unhandled_aws_error_is_one_line_and_never_exit_70(monkeypatch, capsys, error, code, says):
    def command(_args):
        raise error

    monkeypatch.setattr(cli, "cmd_plan", command)
    assert cli.main(["plan"]) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rolelab: error:") and says in lines[0], lines

"""AWS API errors as the lab reads them: a refusal is about the lab, a silent endpoint is infrastructure.

A ClientError (AccessDenied, NoSuchEntity, IncorrectState) is the account answering: a finding
for that student. An endpoint that does not answer (connection refused, timeouts) is
infrastructure: exit 3, one line, with what to do. Neither is ever exit 70.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from labs.core.errors import InfraError, UsageError

ENDPOINT_ERRORS = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)
NO_CREDENTIALS_FIX = ("no AWS credentials on this machine: run `aws configure`, set AWS_PROFILE, or `aws sso login` "
                      "(local mode: add --local, or run `rolelab local up` first)")


def api_error(error) -> tuple[str, str]:
    """(code, message) of a botocore ClientError."""
    body = getattr(error, "response", {}).get("Error", {})
    return str(body.get("Code", error.__class__.__name__)), str(body.get("Message", error))


def endpoint_error(what: str, error: Exception) -> InfraError:
    return InfraError(f"{what}: the AWS API did not answer ({error.__class__.__name__}: {error}); local mode: "
                      "`rolelab local status` and, if the lab cloud is down, `rolelab local down` then `up`; "
                      "aws mode: check the network and the region")


@contextmanager
def infra_errors(what: str) -> Iterator[None]:
    """Turn an unanswered API call into InfraError, and missing credentials into a usage error."""
    try:
        yield
    except ENDPOINT_ERRORS as error:
        raise endpoint_error(what, error) from None
    except NoCredentialsError:
        raise UsageError(NO_CREDENTIALS_FIX) from None

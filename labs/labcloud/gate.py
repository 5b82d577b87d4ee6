"""The lab cloud's request path: checks that run before moto sees a request (a WSGI middleware).

A check is `check(environ) -> None | (status, body)`: None lets the request on, a tuple answers it
("403 Forbidden", "why") and moto never sees it. Checks run in order and the first answer wins, so
a new rule (say, exercise mode: a student's console user may only touch instances tagged with
their own name) is one more function in the list `server.py` builds. A check must be cheap and
must not consume the request body (`wsgi.input`) unless it puts it back.

The hosts reach this endpoint (their aws CLI needs it): everything a host must not use is closed
here, not by hoping nobody types the URL.
"""

from __future__ import annotations

import hmac
import io
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs

Answer = tuple[str, str] | tuple[str, str, str]  # (status, body) or (status, body, content type)
Check = Callable[[dict[str, Any]], Answer | None]
CONTROL_HEADER = "X-Rolelab-Control"  # carries the stack's control token (the CLI's side only)


class Gate:
    """A WSGI app that runs `checks` in order in front of `app`."""

    def __init__(self, app: Callable, checks: Sequence[Check]):
        self.app = app
        self.checks = list(checks)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        for check in self.checks:
            answer = check(environ)
            if answer is not None:
                status, body, kind = (*answer, "text/plain; charset=utf-8")[:3]
                data = body.encode()
                start_response(status, [("Content-Type", kind), ("Content-Length", str(len(data)))])
                return [data]
        return self.app(environ, start_response)


def moto_admin_needs_token(token: str) -> Check:
    """moto's admin routes (/moto-api: a dump of every account's state with every secret key, reset, the
    dashboard) answer only a request carrying the stack's control token, which no host has."""
    header = "HTTP_" + CONTROL_HEADER.upper().replace("-", "_")

    def check(environ: dict[str, Any]) -> Answer | None:
        path = environ.get("PATH_INFO", "")
        if not (path.startswith("/moto-api") or path == "/favicon.ico"):
            return None
        if hmac.compare_digest(environ.get(header, "").encode(), token.encode()):
            return None
        return ("403 Forbidden", "moto's admin API is closed to everything but rolelab's control channel\n")

    return check


def no_builtin_imds(environ: dict[str, Any]) -> Answer | None:
    """moto's own instance metadata (fixed fake credentials) is not the lab's: each host has its own IMDS."""
    if environ.get("PATH_INFO", "").startswith(("/latest/meta-data", "/latest/api/")):
        return ("404 Not Found", "no instance metadata here: a host's IMDS is AWS_EC2_METADATA_SERVICE_ENDPOINT\n")
    return None


class OneAtATime:
    """A WSGI app that lets requests for `actions` reach `app` one at a time.

    moto's backends are not thread-safe, and the server is threaded: the program launches a class's
    instances at once, and a RunInstances that raced another's came back as a 500 under load. The
    actions named here are few per stack and quick, so queueing them costs nothing anyone sees."""

    def __init__(self, app: Callable, actions: Sequence[str]):
        self.app = app
        self.actions = frozenset(actions)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if query_action(environ) not in self.actions:
            return self.app(environ, start_response)
        with self._lock:
            return list(self.app(environ, start_response))  # the whole answer made inside the lock


def query_action(environ: dict[str, Any]) -> str:
    """The AWS query protocol's Action, from the URL or a form body (which is put back for moto to read)."""
    found = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if found:
        return found[0]
    if environ.get("REQUEST_METHOD") != "POST" or not environ.get("CONTENT_TYPE", "").startswith(
            "application/x-www-form-urlencoded"):
        return ""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return (parse_qs(body.decode(errors="replace")).get("Action") or [""])[0]

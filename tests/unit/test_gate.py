"""The lab cloud's request gate: checks in order, the first answer wins, moto sees only what passes."""

from __future__ import annotations

from labs.labcloud.gate import CONTROL_HEADER, Gate, moto_admin_needs_token, no_builtin_imds


def call(gate: Gate, path: str, headers: dict[str, str] | None = None) -> tuple[str, bytes]:
    environ = {"PATH_INFO": path, **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()}}
    seen: list[str] = []
    body = b"".join(gate(environ, lambda status, _headers: seen.append(status)))
    return seen[0], body


def moto(environ, start_response):
    start_response("200 OK", [])
    return [b"moto"]


GATE = Gate(moto, [moto_admin_needs_token("s3cret"), no_builtin_imds])


def test_moto_admin_routes_need_the_control_token():
    for path in ("/moto-api/data.json", "/moto-api/", "/moto-api/reset", "/favicon.ico"):
        assert call(GATE, path)[0] == "403 Forbidden", path
        assert call(GATE, path, {CONTROL_HEADER: "guess"})[0] == "403 Forbidden", path
        assert call(GATE, path, {CONTROL_HEADER: "s3cret"}) == ("200 OK", b"moto"), path


def test_aws_api_calls_pass_and_moto_builtin_imds_is_404():
    assert call(GATE, "/") == ("200 OK", b"moto")
    assert call(GATE, "/latest/meta-data/iam/security-credentials/")[0] == "404 Not Found"


def test_checks_run_in_order_and_the_first_answer_wins():
    ran: list[str] = []
    first = lambda env: ran.append("first") or ("418 I'm a teapot", "no")  # noqa: E731
    second = lambda env: ran.append("second")  # noqa: E731
    assert call(Gate(moto, [first, second]), "/")[0] == "418 I'm a teapot"
    assert ran == ["first"]

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


def test_run_instances_reach_moto_one_at_a_time_and_moto_still_reads_the_body():
    import io
    import threading
    import time

    from labs.labcloud.gate import OneAtATime

    inside, most, bodies = [0], [0], []
    lock = threading.Lock()

    def moto(environ, start_response):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        bodies.append(environ["wsgi.input"].read())
        time.sleep(0.05)  # long enough for the others to arrive meanwhile
        with lock:
            inside[0] -= 1
        start_response("200 OK", [])
        return [b"ok"]

    app = OneAtATime(moto, ["RunInstances"])

    def request(action: str) -> None:
        body = f"Action={action}&Version=2016-11-15&ImageId=ami-1".encode()
        environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "QUERY_STRING": ""}
        assert b"".join(app(environ, lambda *_: None)) == b"ok"

    threads = [threading.Thread(target=request, args=("RunInstances",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1, "two RunInstances reached moto at once"
    assert bodies == [b"Action=RunInstances&Version=2016-11-15&ImageId=ami-1"] * 4, "moto must still read the body"
    most[0] = 0
    readers = [threading.Thread(target=request, args=("DescribeInstances",)) for _ in range(4)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    assert most[0] > 1, "other actions are not queued"

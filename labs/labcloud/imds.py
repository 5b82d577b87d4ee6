"""An IMDS emulator for one instance: IMDSv2 tokens around a table of paths.

Follows EC2: PUT /latest/api/token with a TTL of 1..21600 s (else 400), refused when
forwarded (X-Forwarded-For); a missing or expired token is 401 when tokens are
required, and an invalid token is 401 always; unknown paths are a loud 404.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from labs.labcloud.metadata import CredentialMinter, InstanceFacts, MotoMetadata

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL = 21600
MAX_BODY = 64 * 1024  # IMDS requests carry no body worth reading
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Reply:
    status: int
    body: str = ""
    content_type: str = "text/plain"


NOT_FOUND = Reply(404, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<title>404 - Not Found</title>\n",
                  "text/html")
BAD_REQUEST = Reply(400, "Bad Request")
UNAUTHORIZED = Reply(401, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<title>401 - Unauthorized</title>\n",
                     "text/html")


class TokenStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, ttl: int) -> str:
        token = secrets.token_urlsafe(42)
        with self._lock:
            now = self._clock()
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}  # forget expired ones
            self._tokens[token] = now + ttl
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > self._clock()


def metadata_routes(facts: InstanceFacts, minter: CredentialMinter) -> Callable[[str], Reply]:
    """path -> Reply for one instance at one moment (the role is read per request)."""
    credentials_prefix = "/latest/meta-data/iam/security-credentials/"
    table: dict[str, Callable[[], Reply]] = {
        "/latest/meta-data/instance-id": lambda: Reply(200, facts.instance_id),
        "/latest/meta-data/ami-id": lambda: Reply(200, facts.ami_id),
        "/latest/meta-data/instance-type": lambda: Reply(200, facts.instance_type),
        "/latest/meta-data/local-ipv4": lambda: Reply(200, facts.local_ipv4),
        "/latest/meta-data/public-ipv4": lambda: Reply(200, facts.public_ipv4),
        "/latest/meta-data/placement/region": lambda: Reply(200, facts.region),
        "/latest/meta-data/placement/availability-zone": lambda: Reply(200, facts.availability_zone),
        "/latest/dynamic/instance-identity/document": lambda: Reply(200, json.dumps({
            "instanceId": facts.instance_id, "imageId": facts.ami_id, "instanceType": facts.instance_type,
            "region": facts.region, "availabilityZone": facts.availability_zone,
            "privateIp": facts.local_ipv4}, indent=2), "application/json"),
    }
    if facts.role_name:
        table["/latest/meta-data/iam/info"] = lambda: Reply(200, json.dumps({
            "Code": "Success", "LastUpdated": minter_now(minter),
            "InstanceProfileArn": facts.profile_arn, "InstanceProfileId": facts.profile_id}, indent=2))
        table[credentials_prefix] = lambda: Reply(200, facts.role_name or "")
        table[credentials_prefix + facts.role_name] = lambda: Reply(
            200, json.dumps(minter.credentials(facts.instance_id, facts.role_arn or ""), indent=2))
    listing = sorted({_child("/latest/meta-data/", p) for p in table if p.startswith("/latest/meta-data/")})
    table["/latest/meta-data/"] = lambda: Reply(200, "\n".join(listing))
    table["/latest/meta-data"] = table["/latest/meta-data/"]

    def route(path: str) -> Reply:
        handler = table.get(path)
        return handler() if handler else NOT_FOUND

    return route


def _child(prefix: str, path: str) -> str:
    rest = path[len(prefix):]
    return rest.split("/", 1)[0] + ("/" if "/" in rest else "")


def minter_now(minter: CredentialMinter) -> str:
    from labs.labcloud.metadata import _utc

    return _utc(minter.clock())


class ImdsServer:
    """One instance's IMDS on a loopback port. Faults: 'down' (refuses) or a delay (slow)."""

    def __init__(self, instance_id: str, metadata: MotoMetadata, minter: CredentialMinter):
        self.instance_id = instance_id
        self.metadata = metadata
        self.minter = minter
        self.tokens = TokenStore()
        self.delay = 0.0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> int:
        server = self

        class Handler(_ImdsHandler):
            imds = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port or self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"imds-{self.instance_id}",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def answer(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        facts = self.metadata.facts(self.instance_id)
        if facts is None or facts.http_endpoint != "enabled":
            return NOT_FOUND
        if path == TOKEN_PATH:
            return self._issue_token(method, headers)
        if method != "GET":
            return Reply(405, "Method Not Allowed")
        token = headers.get(TOKEN_HEADER.lower())
        if token is not None and not self.tokens.valid(token):
            return UNAUTHORIZED
        if token is None and facts.http_tokens == "required":
            return UNAUTHORIZED
        return metadata_routes(facts, self.minter)(path)

    def _issue_token(self, method: str, headers: dict[str, str]) -> Reply:
        if method != "PUT":
            return Reply(405, "Method Not Allowed")
        if "x-forwarded-for" in headers:
            return Reply(403, "Forbidden")  # IMDS refuses tokens for proxied requests
        raw = headers.get(TTL_HEADER.lower()) or ""
        ttl = int(raw) if _DIGITS.fullmatch(raw) else 0  # digits only, as EC2: not int()'s "1_0", "+5", " 5 "
        if not 1 <= ttl <= MAX_TTL:
            return BAD_REQUEST
        return Reply(200, self.tokens.issue(ttl))


class _ImdsHandler(BaseHTTPRequestHandler):
    imds: ImdsServer
    server_version = "EC2ws"
    sys_version = ""

    def _serve(self, method: str) -> None:
        if self.imds.delay:
            time.sleep(self.imds.delay)  # the 'slow IMDS' fault
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = self.headers.get("Content-Length") or "0"
        if not _DIGITS.fullmatch(length) or int(length) > MAX_BODY:
            self.close_connection = True  # the body's end is unknown: this connection cannot be reused
            self._send(BAD_REQUEST, headers)
            return
        if int(length):
            self.rfile.read(int(length))
        try:
            reply = self.imds.answer(method, self.path.split("?", 1)[0], headers)
        except Exception:  # noqa: BLE001 a bug here must show as a 500, not a dropped connection
            logging.getLogger("rolelab.cloud.imds").exception("IMDS %s %s failed", method, self.path)
            reply = Reply(500, "Internal Server Error")
        self._send(reply, headers)

    def _send(self, reply: Reply, headers: dict[str, str]) -> None:
        body = reply.body.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.path == TOKEN_PATH and reply.status == 200:
            self.send_header(TTL_HEADER, headers.get(TTL_HEADER.lower(), ""))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 quiet: the cloud log has enough
        pass

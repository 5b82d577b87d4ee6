"""The lab cloud's request path: checks that run before moto sees a request.

A check takes the WSGI environ and returns None (let it through) or (status, body) to answer
instead of moto. Checks run in order; the first refusal wins.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

Check = Callable[[dict], "tuple[int, bytes] | None"]


def gate(app, checks: list[Check]):
    def gated(environ, start_response):
        for check in checks:
            refused = check(environ)
            if refused is not None:
                status, body = refused
                start_response(f"{status} {HTTPStatus(status).phrase}",
                               [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
                return [body]
        return app(environ, start_response)

    return gated


def gated_moto_server(checks: list[Check], ip_address: str = "127.0.0.1", port: int = 0):
    """moto's ThreadedMotoServer, with the checks in front of its application."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class GatedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = gate(DomainDispatcherApplication(create_backend_app), checks)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return GatedMotoServer(ip_address=ip_address, port=port, verbose=False)

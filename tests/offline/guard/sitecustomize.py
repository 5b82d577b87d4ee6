"""Test-only hooks for CLI subprocesses (this directory goes first on their PYTHONPATH).

Each hook is off unless its variable is set: ROLELAB_TEST_CONNECT_LOG audits every TCP
connect and refuses non-loopback ones, so a regression cannot reach the network from a
test; ROLELAB_TEST_SECRETS records the access keys CreateAccessKey hands out, so a test
can prove they never appear in a report.
"""

import errno
import ipaddress
import os
import socket


def audited(real, connect_log: str):
    """socket.connect (or connect_ex) that logs every TCP connect to `connect_log` and refuses non-loopback ones.
    Also used in-process by tests/offline/test_bad_input.py."""
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            with open(connect_log, "a") as log:
                log.write(f"{os.getpid()} {host} {address[1]}\n")
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise OSError(errno.ENETUNREACH, f"rolelab test guard: no connection to {host}")
        return real(self, address)
    return connect


if os.environ.get("ROLELAB_TEST_CONNECT_LOG"):
    socket.socket.connect = audited(socket.socket.connect, os.environ["ROLELAB_TEST_CONNECT_LOG"])
    socket.socket.connect_ex = audited(socket.socket.connect_ex, os.environ["ROLELAB_TEST_CONNECT_LOG"])

if os.environ.get("ROLELAB_TEST_SECRETS"):
    import botocore.client

    _real_call = botocore.client.BaseClient._make_api_call

    def _spy(self, operation, params):
        response = _real_call(self, operation, params)
        if operation == "CreateAccessKey":
            key = response["AccessKey"]
            with open(os.environ["ROLELAB_TEST_SECRETS"], "a") as out:
                out.write(f"{key['AccessKeyId']} {key['SecretAccessKey']}\n")
        return response

    botocore.client.BaseClient._make_api_call = _spy

"""The OpenSSH command for a host: the destination is never an option, paths survive spaces and %."""

from __future__ import annotations

import pytest

from labs.core.errors import UsageError
from labs.core.outputs import HostRecord, LabOutputs
from labs.core.sshconfig import quoted
from labs.remote.openssh import openssh_argv

HOST = HostRecord("student01", "no-role", "i-0123456789abcdef0", "127.0.0.1", 2201, "root", None, (),
                  "http://127.0.0.1:8001", "required")


def outputs(home: str) -> LabOutputs:
    return LabOutputs("local", "us-east-1", "s", (HOST,), private_key_path=f"{home}/id_ed25519",
                      known_hosts=f"{home}/known_hosts")


def test_the_destination_follows_a_double_dash():
    argv = openssh_argv(outputs("/h"), HOST, command=["true"])
    assert argv[-3:] == ["--", "root@127.0.0.1", "true"]


def test_paths_with_spaces_and_percent_are_quoted_for_openssh():
    argv = openssh_argv(outputs("/tmp/my lab 100%"), HOST)
    assert 'UserKnownHostsFile="/tmp/my lab 100%%/known_hosts"' in argv
    assert 'IdentityFile="/tmp/my lab 100%%/id_ed25519"' in argv


def test_sshd_paths_that_expand_no_tokens_keep_their_percent():
    assert quoted("/a b/50%", tokens=False) == '"/a b/50%"'


@pytest.mark.parametrize("path", ['/tmp/a"b', "/tmp/a\nb"])
def test_a_path_openssh_cannot_express_is_refused(path):
    with pytest.raises(UsageError, match="ROLELAB_HOME"):
        quoted(path)

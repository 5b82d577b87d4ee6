"""Host keys the program made: local mode's sshd serves them, known_hosts and the outputs agree,
verify connects pinned to them, and a host presenting another key is refused. A student's own key
(the roster's ssh_public_key column) logs in to their hosts, and so does the instructor's (paramiko,
real TCP)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from labs.core.outputs import LabOutputs
from labs.labcloud.paths import StackPaths
from labs.labcloud.procs import wait_for
from labs.lesson.checks import Check
from labs.lesson.findings import Status
from labs.program.roster import read_roster_keys, students_value
from labs.remote.hostkeys import HostKeyMismatch, known_host_name, pinned_from_outputs
from labs.remote.session import HostSession, Unreachable
from labs.verify.runner import Verifier
from tests.offline.conftest import cloud, host_status, stack_up

STACK = "hostkeys"


@pytest.fixture(scope="module")
def ana_key(tmp_path_factory) -> Path:
    """Ana's own key, made on her laptop: only its public half reaches the program."""
    path = tmp_path_factory.mktemp("ana") / "id_ed25519"
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.with_suffix(".pub").write_text(public.decode() + " ana@laptop\n")
    return path


@pytest.fixture(scope="module")
def keyed(ana_key: Path, tmp_path_factory) -> Iterator[LabOutputs]:
    roster = tmp_path_factory.mktemp("roster") / "class.csv"
    roster.write_text(f"name,email,ssh_public_key\nAna,ana@example.org,{ana_key.with_suffix('.pub').read_text().strip()}\n"
                      "Bo,bo@example.org,\n")
    names, keys = read_roster_keys(roster)
    with stack_up(STACK, {"ttlHours": "0", "students": students_value(names), "studentKeys": json.dumps(keys)}) as outputs:
        yield outputs


def presented_key(port: int) -> str:
    """The key the sshd on this port presents, read over real TCP (no authentication)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.get_security_options().key_types = ["ssh-ed25519"]
            transport.start_client(timeout=5)
            key = transport.get_remote_server_key()
            return f"{key.get_name()} {key.get_base64()}"
        finally:
            transport.close()


def echo(host) -> Check:
    return Check(id="echo", host=host, title="echo pinned", command="echo pinned", expected="pinned",
                 evaluate=lambda result: result.stdout.strip() or f"exit {result.rc}")


def test_local_sshd_serves_the_key_the_program_made_and_known_hosts_agrees(keyed: LabOutputs):
    paths = StackPaths.for_stack(STACK)
    made = {r["name"]: r["state"]["publicKeyOpenssh"].strip() for r in json.loads(paths.resources.read_text())
            if r["type"] == "tls:index/privateKey:PrivateKey"}
    known = paramiko.HostKeys(keyed.known_hosts)
    for host in keyed.hosts:
        assert host.host_key and host.host_key == made[f"{host.student}-{host.name}-host-key"], host.label
        assert presented_key(host.port) == host.host_key, f"{host.label}: sshd serves another key than the program's"
        pinned = known.lookup(known_host_name(host.address, host.port))
        assert {f"{t} {k.get_base64()}" for t, k in pinned.items()} == {host.host_key}, host.label
    assert oct(paths.resources.stat().st_mode & 0o777) == "0o600", "the record holds the hosts' private keys"


def test_verify_connects_pinned_to_the_programs_key_alone(keyed: LabOutputs):
    host = keyed.host("with-role", "ana")
    with HostSession(host, pinned_from_outputs(host), keyed.private_key_path, budget=5, local_only=True) as session:
        assert session.run("echo pinned").stdout.strip() == "pinned"
    with Verifier(keyed, settle=0.0) as verifier:
        (found,) = verifier.run([echo(host)])
    assert found.status is Status.PASS, found


def test_a_host_presenting_another_key_is_refused_with_a_clear_finding(keyed: LabOutputs):
    host = keyed.host("no-role", "bo")
    log = StackPaths.for_stack(STACK).host_dir(host.instance_id) / "sshd.log"
    fault = {"action": "restart", "instance_id": host.instance_id}
    cloud(keyed).request("POST", "/faults/sshd", {**fault, "host_key": "new"})
    try:
        assert wait_for(lambda: host_status(keyed, host)["state"] == "ready", 15)
        assert presented_key(host.port) != host.host_key
        accepted = log.read_text().count("Accepted publickey")
        with pytest.raises(HostKeyMismatch):
            HostSession(host, pinned_from_outputs(host), keyed.private_key_path, budget=5, local_only=True).connect()
        with Verifier(keyed, settle=0.0) as verifier:
            (found,) = verifier.run([echo(host)])
        assert log.read_text().count("Accepted publickey") == accepted, "a session was opened on a re-keyed host"
    finally:
        cloud(keyed).request("POST", "/faults/sshd", {**fault, "host_key": "restore"})
        assert wait_for(lambda: host_status(keyed, host)["state"] == "ready", 15)
    assert found.status is Status.FAIL and found.observed == "host key mismatch"
    pinned = pinned_from_outputs(host).lookup(known_host_name(host.address, host.port))["ssh-ed25519"]
    assert f"pinned {pinned.fingerprint}" in found.note and host.label in found.note
    assert presented_key(host.port) == host.host_key, "restore brings the program's key back"


def test_a_restarted_host_keeps_the_programs_key(keyed: LabOutputs):
    host = keyed.host("with-role", "ana")
    cloud(keyed).request("POST", "/faults/sshd", {"action": "restart", "instance_id": host.instance_id})
    assert wait_for(lambda: host_status(keyed, host)["state"] == "ready", 15)
    assert presented_key(host.port) == host.host_key
    assert Path(StackPaths.for_stack(STACK).host_dir(host.instance_id) / "ssh_host_ed25519_key").stat().st_mode & 0o077 == 0


def login(host, key_file: Path) -> str:
    """Log in with exactly this key (no agent, no other keys), pinned to the program's host key; run `id -un`."""
    with HostSession(host, pinned_from_outputs(host), str(key_file), budget=5, local_only=True) as session:
        return session.run("id -un").stdout.strip()


def test_a_student_logs_in_with_their_own_key_and_the_instructor_with_theirs(keyed: LabOutputs, ana_key: Path):
    instructor = Path(keyed.private_key_path)
    for host in (keyed.host("no-role", "ana"), keyed.host("with-role", "ana")):
        assert login(host, ana_key) == host.user, f"{host.label}: Ana's own key is refused"
        assert login(host, instructor) == host.user, f"{host.label}: the instructor's key is refused"
        keys = (StackPaths.for_stack(STACK).host_dir(host.instance_id) / "authorized_keys").read_text().split("\n")
        assert sorted(" ".join(k.split()[:2]) for k in keys if k) == sorted(
            " ".join(Path(f).with_suffix(".pub").read_text().split()[:2]) for f in (ana_key, instructor)), host.label


def test_a_students_key_opens_no_one_elses_host(keyed: LabOutputs, ana_key: Path):
    bo = keyed.host("with-role", "bo")
    with pytest.raises(Unreachable, match="SSH authentication failed") as refused:
        login(bo, ana_key)
    assert refused.value.cause == "auth"
    assert login(bo, Path(keyed.private_key_path)) == bo.user

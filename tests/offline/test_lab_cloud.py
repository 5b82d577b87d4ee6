"""The lesson on a real lab cloud, seen through the real OpenSSH client and paramiko."""

from __future__ import annotations

import json

import paramiko
import pytest

from labs.labcloud.seed import SEED_USERS
from labs.provision.operator import operator_clients
from labs.remote.session import HostSession
from tests.offline.conftest import host_status, ssh

NO_CREDENTIALS = 'Unable to locate credentials. You can configure credentials by running "aws configure".'


def paramiko_session(outputs, host) -> HostSession:
    keys = paramiko.HostKeys(outputs.known_hosts)
    return HostSession(host, keys, outputs.private_key_path, budget=10, local_only=True)


def test_no_role_host_has_no_credentials_openssh(lab):
    host = lab.host("no-role")
    done = ssh(lab, host, "aws iam list-users")
    assert done.returncode == 255, done
    assert NO_CREDENTIALS in done.stderr
    assert done.stdout == ""


def test_no_role_host_imds_has_no_role_paramiko(lab):
    host = lab.host("no-role")
    with paramiko_session(lab, host) as session:
        token = session.run(f"curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {host.imds_endpoint}/latest/api/token").stdout
        status = session.run(f"curl -s -o /dev/null -w '%{{http_code}}' -H 'X-aws-ec2-metadata-token: {token}' "
                             f"{host.imds_endpoint}/latest/meta-data/iam/security-credentials/")
        instance = session.run(f"curl -s -H 'X-aws-ec2-metadata-token: {token}' {host.imds_endpoint}/latest/meta-data/instance-id")
    assert len(token) > 20
    assert status.stdout == "404"  # so the no-role check cannot pass for the wrong reason
    assert instance.stdout == host.instance_id


def test_with_role_lists_seeded_users_and_roles(lab):
    host = lab.host("with-role")
    users = ssh(lab, host, "aws iam list-users --output json")
    assert users.returncode == 0, users.stderr
    names = {u["UserName"] for u in json.loads(users.stdout)["Users"]}
    assert set(SEED_USERS) <= names
    with paramiko_session(lab, host) as session:
        roles = session.run("aws iam list-roles --output json")
    assert roles.rc == 0 and "DemoRoleForEC2" in {r["RoleName"] for r in json.loads(roles.stdout)["Roles"]}


def test_with_role_create_user_is_denied_and_creates_nothing(lab):
    host = lab.host("with-role")
    done = ssh(lab, host, "aws iam create-user --user-name mallory")
    assert done.returncode == 255
    assert "(AccessDenied)" in done.stderr and "is not authorized to perform: iam:CreateUser" in done.stderr
    iam = operator_clients(lab)("iam")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="mallory")


def test_caller_identity_is_the_role_with_the_instance_id_as_session(lab):
    host = lab.host("with-role")
    done = ssh(lab, host, "aws sts get-caller-identity --output json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Arn"] == f"arn:aws:sts::123456789012:assumed-role/DemoRoleForEC2/{host.instance_id}"


def test_hosts_get_only_loopback_endpoints_and_no_stored_credentials(lab):
    """Safety: what a host's processes see points at this machine's loopback only."""
    for host in lab.hosts:
        env = dict(line.split("=", 1) for line in ssh(lab, host, "env").stdout.splitlines() if "=" in line)
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:"), env
        assert env["AWS_EC2_METADATA_SERVICE_ENDPOINT"].startswith("http://127.0.0.1:"), env
        assert env["AWS_EC2_METADATA_SERVICE_ENDPOINT"].rstrip("/") == host.imds_endpoint
        assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
        assert "169.254" not in " ".join(env.values())
        assert ssh(lab, host, "test -e ~/.aws/credentials; echo $?").stdout.strip() == "1"
        assert host.address == "127.0.0.1" and lab.endpoint.startswith("http://127.0.0.1:")


def test_sshd_runs_as_the_invoking_user_with_its_own_config(lab):
    import os
    import pwd

    for host in lab.hosts:
        status = host_status(lab, host)
        assert host.user == pwd.getpwuid(os.geteuid()).pw_name
        with open(f"/proc/{status['sshd_pid']}/status") as handle:
            uid = next(line.split()[1] for line in handle if line.startswith("Uid:"))
        assert int(uid) == os.geteuid()
        cmdline = open(f"/proc/{status['sshd_pid']}/cmdline").read()
        assert "sshd_config" in cmdline and lab.stack in cmdline

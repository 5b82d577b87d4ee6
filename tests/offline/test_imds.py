"""The IMDS emulator, spoken to over real HTTP on loopback, as EC2's IMDS behaves."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

import pytest

from labs.provision.operator import operator_clients
from tests.offline.conftest import cloud, ssh


def call(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def token(endpoint: str, ttl: str = "60") -> str:
    status, body = call(f"{endpoint}/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    assert status == 200, body
    return body


@pytest.mark.parametrize("ttl, status", [(None, 400), ("0", 400), ("21601", 400), ("abc", 400), ("1", 200), ("21600", 200),
                                        ("1_0", 400), ("+5", 400), (" 300 ", 400), ("300 x", 400)])
def test_token_ttl_must_be_1_to_21600(lab, ttl, status):
    headers = {} if ttl is None else {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
    assert call(f"{lab.host('with-role').imds_endpoint}/latest/api/token", "PUT", headers)[0] == status


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", str(10**9)])
def test_a_bad_content_length_is_a_400_not_a_dropped_connection(lab, length):
    url = urlparse(lab.host("with-role").imds_endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
        conn.sendall(f"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
                     "X-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n".encode())
        answer = conn.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.0 400") or answer.startswith("HTTP/1.1 400"), answer


def test_forwarded_token_request_is_refused(lab):
    headers = {"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "203.0.113.1"}
    assert call(f"{lab.host('with-role').imds_endpoint}/latest/api/token", "PUT", headers)[0] == 403


def test_tokens_required_missing_invalid_and_expired_are_401(lab):
    endpoint = lab.host("with-role").imds_endpoint
    url = f"{endpoint}/latest/meta-data/instance-id"
    assert call(url)[0] == 401
    assert call(url, headers={"X-aws-ec2-metadata-token": "forged"})[0] == 401
    short = token(endpoint, "1")
    assert call(url, headers={"X-aws-ec2-metadata-token": short}) == (200, lab.host("with-role").instance_id)
    time.sleep(1.1)  # a 1-second token must expire; there is nothing to poll for
    assert call(url, headers={"X-aws-ec2-metadata-token": short})[0] == 401


def test_unknown_path_is_404(lab):
    endpoint = lab.host("with-role").imds_endpoint
    headers = {"X-aws-ec2-metadata-token": token(endpoint)}
    assert call(f"{endpoint}/latest/meta-data/no-such-thing", headers=headers)[0] == 404
    assert call(f"{endpoint}/latest/meta-data/iam/security-credentials/NotTheRole", headers=headers)[0] == 404


def test_role_host_serves_info_and_a_full_credentials_document(lab):
    host = lab.host("with-role")
    headers = {"X-aws-ec2-metadata-token": token(host.imds_endpoint)}
    base = f"{host.imds_endpoint}/latest/meta-data/iam"
    assert call(f"{base}/security-credentials/", headers=headers) == (200, "DemoRoleForEC2")
    info = json.loads(call(f"{base}/info", headers=headers)[1])
    assert set(info) == {"Code", "LastUpdated", "InstanceProfileArn", "InstanceProfileId"}
    assert info["InstanceProfileArn"].endswith(":instance-profile/DemoRoleForEC2")
    document = json.loads(call(f"{base}/security-credentials/DemoRoleForEC2", headers=headers)[1])
    assert set(document) == {"Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert document["Code"] == "Success" and document["Type"] == "AWS-HMAC"
    assert document["AccessKeyId"].startswith("ASIA")
    expires = dt.datetime.strptime(document["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert expires - dt.datetime.now(dt.timezone.utc) > dt.timedelta(minutes=5)


def test_no_role_host_has_no_iam_tree(lab):
    host = lab.host("no-role")
    headers = {"X-aws-ec2-metadata-token": token(host.imds_endpoint)}
    for path in ("iam/security-credentials/", "iam/info"):
        assert call(f"{host.imds_endpoint}/latest/meta-data/{path}", headers=headers)[0] == 404
    listing = call(f"{host.imds_endpoint}/latest/meta-data/", headers=headers)[1].split()
    assert "instance-id" in listing and "iam/" not in listing


def test_tokens_optional_answers_without_a_token(lab):
    """The IMDSv1 switch is read at request time from EC2's metadata options."""
    host = lab.host("with-role")
    ec2 = operator_clients(lab)("ec2")
    url = f"{host.imds_endpoint}/latest/meta-data/iam/security-credentials/"
    ec2.modify_instance_metadata_options(InstanceId=host.instance_id, HttpTokens="optional")
    try:
        assert call(url) == (200, "DemoRoleForEC2")
        assert call(url, headers={"X-aws-ec2-metadata-token": "forged"})[0] == 401  # a bad token is never OK
    finally:
        ec2.modify_instance_metadata_options(InstanceId=host.instance_id, HttpTokens="required")
    assert call(url)[0] == 401


@pytest.mark.slow
def test_credentials_rotate_before_expiry_and_the_cli_keeps_working(lab):
    host = lab.host("with-role")
    control = cloud(lab)
    control.request("POST", "/settings/credentials", {"lifetime": 302, "rotate_every": 2})
    try:
        base = f"{host.imds_endpoint}/latest/meta-data/iam/security-credentials/DemoRoleForEC2"
        seen = []
        deadline = time.monotonic() + 10
        while len({d["AccessKeyId"] for d in seen}) < 2 and time.monotonic() < deadline:
            seen.append(json.loads(call(base, headers={"X-aws-ec2-metadata-token": token(host.imds_endpoint)})[1]))
            time.sleep(0.5)
        keys = [d["AccessKeyId"] for d in seen]
        assert len(set(keys)) >= 2, f"no rotation observed in {keys}"
        parse = lambda text: dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        for old, new in zip(seen, seen[1:]):
            if old["AccessKeyId"] != new["AccessKeyId"]:
                left = parse(old["Expiration"]) - parse(new["LastUpdated"])
                assert left >= dt.timedelta(minutes=5), f"replaced only {left} before expiry"
        done = ssh(lab, host, "aws iam list-users --output json")
        assert done.returncode == 0, done.stderr
        identity = json.loads(ssh(lab, host, "aws sts get-caller-identity --output json").stdout)
        assert identity["Arn"].endswith(f"/DemoRoleForEC2/{host.instance_id}")
    finally:
        control.request("POST", "/settings/credentials", {"lifetime": 21600, "rotate_every": 3600})

"""aws mode: a host that came up without a public IPv4 is one clear line at verify, not an SSH timeout."""

from __future__ import annotations

import pytest

from labs.app.sequence import require_public_addresses
from labs.core.errors import ExitStatus, LabWrong
from labs.core.outputs import from_dict

HOST = {"student": "student01", "name": "with-role", "instance_id": "i-0abc1234def567890", "address": "", "port": 22,
        "user": "ec2-user", "role": "DemoRoleForEC2", "policies": [], "imds_endpoint": "http://169.254.169.254",
        "http_tokens": "required"}


def test_a_host_without_a_public_ipv4_names_the_host_and_the_fix():
    outputs = from_dict({"mode": "aws", "region": "us-east-1", "stack": "dev", "hosts": [HOST]})
    with pytest.raises(LabWrong) as caught:
        require_public_addresses(outputs)
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_status is ExitStatus.LAB_WRONG
    assert "student01/with-role (i-0abc1234def567890) has no public IPv4" in message and "rolelab:subnetId" in message


def test_hosts_with_addresses_pass():
    outputs = from_dict({"mode": "aws", "region": "us-east-1", "stack": "dev",
                         "hosts": [dict(HOST, address="203.0.113.9")]})
    require_public_addresses(outputs)

"""The outputs contract: its schema, its aws-mode values, and its validation."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from labs.core import outputs as lab_outputs
from labs.core.errors import UsageError

SCHEMA_FIELDS = ["student", "name", "instance_id", "address", "port", "user", "role", "policies",
                 "imds_endpoint", "http_tokens"]


def test_outputs_schema_is_exactly_the_documented_one(run_lab):
    run = run_lab(imdsv1Demo="true")
    assert set(run.outputs) == {"mode", "region", "stack", "hosts", "exercise", "targets"}
    assert run.outputs["exercise"] is False
    assert run.outputs["targets"] == {"student01": {"role": "DemoRoleForEC2",
                                                    "policies": ["arn:aws:iam::aws:policy/IAMReadOnlyAccess"]}}
    assert run.outputs["mode"] == "aws" and run.outputs["region"] == "us-east-1"
    assert [f.name for f in fields(lab_outputs.HostRecord)] == SCHEMA_FIELDS
    for host in run.outputs["hosts"]:
        assert list(host) == SCHEMA_FIELDS, f"host fields {list(host)}"


def test_exercise_mode_starts_every_host_without_a_role_and_keeps_the_aim(run_lab):
    run = run_lab(exercise="true", students="2")
    assert run.outputs["exercise"] is True
    assert all(h["role"] is None and h["policies"] == [] for h in run.outputs["hosts"])
    assert {h["name"] for h in run.outputs["hosts"]} == {"no-role", "with-role"}, "the hosts keep their names"
    assert run.outputs["targets"]["student02"]["role"] == "DemoRoleForEC2-student02"
    types = {r.type for r in run.registrations}
    assert not types & {"aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile",
                        "aws:iam/rolePolicyAttachment:RolePolicyAttachment"}, types
    assert all(not r.inputs.get("iamInstanceProfile") for r in run.of_type("aws:ec2/instance:Instance"))


def test_aws_mode_hosts_point_at_ec2(run_lab):
    run = run_lab()
    by_name = {h["name"]: h for h in run.outputs["hosts"]}
    assert set(by_name) == {"no-role", "with-role"}
    for host in by_name.values():
        assert host["port"] == 22 and host["user"] == "ec2-user"
        assert host["imds_endpoint"] == "http://169.254.169.254"
        assert host["address"].startswith("203.0.113.") and host["instance_id"].startswith("i-")
        assert host["http_tokens"] == "required" and host["student"] == "student01"
    assert by_name["no-role"]["role"] is None and by_name["no-role"]["policies"] == []
    assert by_name["with-role"]["role"] == "DemoRoleForEC2"
    assert by_name["with-role"]["policies"] == ["arn:aws:iam::aws:policy/IAMReadOnlyAccess"]


def test_outputs_round_trip_through_json(run_lab, tmp_path):
    run = run_lab(students="2")
    parsed = lab_outputs.from_dict(run.outputs)
    path = tmp_path / "outputs.json"
    path.write_text(parsed.to_json())
    again = lab_outputs.load(path)
    assert again == parsed
    assert again.students() == ("student01", "student02")
    assert again.host("with-role", "student02").role == "DemoRoleForEC2-student02"


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON"),
    ("[]", "not a JSON object"),
    ('{"mode": "aws", "region": "us-east-1"}', "missing hosts"),
    ('{"mode": "gcp", "region": "x", "hosts": [{}]}', "mode must be aws or local"),
    ('{"mode": "aws", "region": "x", "hosts": []}', "non-empty list"),
    ('{"mode": "aws", "region": "x", "hosts": [{"student": "a"}]}', "hosts[0] lacks"),
])
def test_corrupt_outputs_are_one_clear_error(tmp_path, text, needle):
    path = tmp_path / "outputs.json"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        lab_outputs.load(path)
    message = str(caught.value)
    assert needle in message and "\n" not in message and str(path) in message


def test_host_lookup_names_the_choices(run_lab):
    parsed = lab_outputs.from_dict(run_lab(students="2").outputs)
    with pytest.raises(UsageError, match="pick one with --student"):
        parsed.host("no-role")
    with pytest.raises(UsageError, match="hosts are: no-role, with-role"):
        parsed.host("bastion")


def test_outputs_json_is_stable(run_lab):
    parsed = lab_outputs.from_dict(run_lab().outputs)
    assert json.loads(parsed.to_json())["hosts"][0]["policies"] == []

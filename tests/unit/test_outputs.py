"""The outputs contract: its schema, its aws-mode values, and its validation."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from labs.core import outputs as lab_outputs
from labs.core.errors import UsageError

SCHEMA_FIELDS = ["student", "name", "instance_id", "address", "port", "user", "role", "policies",
                 "imds_endpoint", "http_tokens", "host_key"]


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
    ('{"mode": "aws", "region": "us-east-1", "hosts": []}', "non-empty list"),
    ('{"mode": "aws", "region": "us-east-1", "hosts": [{"student": "a"}]}', "hosts[0] lacks"),
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


def test_outputs_without_host_key_still_load_for_console_pinning():
    document = _document("aws")
    document["hosts"][0].pop("host_key", None)
    assert lab_outputs.from_dict(document).hosts[0].host_key is None


# -- every field against its own grammar (the outputs file is untrusted input) -----------------------

def _document(mode: str = "local", **host_changes) -> dict:
    host = {"student": "student01", "name": "with-role", "instance_id": "i-0123456789abcdef0",
            "address": "127.0.0.1", "port": 2201, "user": "ec2-user", "role": "DemoRoleForEC2",
            "policies": ["arn:aws:iam::aws:policy/IAMReadOnlyAccess"],
            "imds_endpoint": "http://127.0.0.1:8001" if mode == "local" else "http://169.254.169.254",
            "http_tokens": "required"}
    return {"mode": mode, "region": "us-east-1", "stack": "dev", "hosts": [dict(host, **host_changes)]}


@pytest.mark.parametrize("field, value", [
    ("user", "-oProxyCommand=touch /tmp/PWNED"), ("user", "ec2 user"), ("user", ""), ("user", 0),
    ("address", "-oProxyCommand=x"), ("address", "a b"), ("address", "host;id"), ("address", ""),
    ("port", 0), ("port", 65536), ("port", 10**20), ("port", True), ("port", 22.0), ("port", "22"),
    ("instance_id", "i-xyz"), ("instance_id", "i-0123;id"), ("instance_id", "0123456789abcdef0"),
    ("role", "Rôle"), ("role", "a" * 65), ("role", ""), ("role", ["R"]),
    ("policies", "arn:aws:iam::aws:policy/IAMReadOnlyAccess"), ("policies", ["IAMReadOnlyAccess"]),
    ("policies", None), ("http_tokens", "sometimes"), ("http_tokens", None),
    ("imds_endpoint", "http://127.0.0.1:8001$(touch /tmp/PWNED)"), ("imds_endpoint", "http://203.0.113.5"),
    ("imds_endpoint", "http://127.0.0.1"), ("imds_endpoint", "http://127.0.0.300:80"),
    ("imds_endpoint", "http://169.254.169.254"), ("student", "a\x1b[2Jb"), ("name", "../x"),
    ("host_key", "ssh-ed25519"), ("host_key", "ssh-ed25519 AAAA\n[evil]:22 ssh-ed25519 AAAA"), ("host_key", ""),
    ("host_key", "ssh-dss AAAAB3NzaC1kc3MAAACBAP"), ("host_key", "-----BEGIN OPENSSH PRIVATE KEY-----"),
])
def test_a_host_field_outside_its_grammar_is_one_line_naming_it(field, value):
    with pytest.raises(UsageError) as caught:
        lab_outputs.from_dict(_document(**{field: value}), "--outputs F")
    message = str(caught.value)
    assert f"hosts[0].{field} = " in message and "\n" not in message and "re-create it" in message
    assert len(message) < 300


@pytest.mark.parametrize("changes", [
    {"imds_endpoint": "http://169.254.169.254.nip.io"}, {"imds_endpoint": "http://127.0.0.1:8001"},
])
def test_aws_mode_hosts_read_only_the_link_local_imds(changes):
    with pytest.raises(UsageError, match=r"hosts\[0\].imds_endpoint"):
        lab_outputs.from_dict(_document("aws", **changes))


@pytest.mark.parametrize("mode, changes", [
    ("aws", {"address": "ec2-203-0-113-5.compute-1.amazonaws.com", "instance_id": "i-0123abcd"}),
    ("aws", {"address": "2001:db8::5", "role": None, "policies": [], "user": "ubuntu"}),
    ("local", {"address": "127.0.0.2", "user": "root", "http_tokens": "optional", "port": 65535}),
    ("aws", {"policies": ["arn:aws-us-gov:iam::123456789012:policy/team/Custom_Policy+1"]}),
    ("aws", {"host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMGRILciBhqiLiUqfZn7mhmNfV29SR9WaGjBPDrab98J"}),
    ("aws", {"host_key": None}),
])
def test_well_formed_documents_pass(mode, changes):
    host = lab_outputs.from_dict(_document(mode, **changes)).hosts[0]
    assert all(getattr(host, k) == (tuple(v) if k == "policies" else v) for k, v in changes.items())


@pytest.mark.parametrize("changes, needle", [
    ({"region": "mars"}, "region = 'mars'"), ({"region": "us-east-1; id"}, "region = "),
    ({"stack": "../../etc"}, "stack = '../../etc'"), ({"stack": ".."}, "stack = '..'"), ({"known_hosts": "a\nb"}, "known_hosts = "),
    ({"mode": "x" * 1000}, "mode must be aws or local"),
])
def test_document_fields_outside_their_grammar(changes, needle):
    with pytest.raises(UsageError) as caught:
        lab_outputs.from_dict(dict(_document(), **changes))
    assert needle in str(caught.value) and len(str(caught.value)) < 300

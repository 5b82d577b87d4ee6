"""Every config error is one line naming the key, the bad value and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from labs.core.errors import ConfigError, UsageError
from labs.program import config as lab_config
from labs.provision.plan import PLACEHOLDERS

GOOD = {"sshCidr": "198.51.100.7/32", "sshPublicKey": PLACEHOLDERS["sshPublicKey"]}

# (key, value, words the message must contain besides the key)
BAD = [
    ("students", "0", ["1..100", "give a count"]),
    ("students", "-3", ["1..100"]),
    ("students", "101", ["1..100"]),
    ("students", "ana,,bo", ["empty"]),
    ("students", "ana,Ana", ["duplicate", "'ana'"]),
    ("students", "x" * 40, ["at most 32", "shorten"]),
    ("students", " ", ["no students given"]),
    ("roleName", "Demo Role", ["IAM role names", "DemoRoleForEC2"]),
    ("roleName", "R" * 65, ["1..64"]),
    ("policies", "AdministratorAccess", ["not a managed policy the lab knows", "supported: IAMReadOnlyAccess"]),
    ("policies", "arn:aws:iam::aws:policy/IAMReadOnlyAccess", ["write the name 'IAMReadOnlyAccess'"]),
    ("policies", ",", ["no policy given"]),
    ("policies", "IAMReadOnlyAccess,IAMReadOnlyAccess", ["listed twice"]),
    ("sshCidr", "0.0.0.0/0", ["whole internet", "allowWorldSsh"]),
    ("sshCidr", "::/0", ["IPv6", "IPv4"]),
    ("sshCidr", "2001:db8::7/128", ["IPv6", "only a public IPv4"]),
    ("sshCidr", "10.0.0.300/32", ["not a CIDR"]),
    ("sshCidr", "203.0.113.7", ["no prefix length", "203.0.113.7/32"]),
    ("sshCidr", "203.0.113.7/24", ["host bits", "203.0.113.0/24"]),
    ("sshCidr", "", ["required", "pulumi config set rolelab:sshCidr"]),
    ("allowWorldSsh", "maybe", ["not a boolean", "true or false"]),
    ("imdsv1Demo", "2", ["not a boolean"]),
    ("instanceType", "huge", ["not an EC2 instance type", "t3.micro"]),
    ("instanceType", "t4g.micro", ["Graviton", "x86_64"]),
    ("sshPublicKey", "", ["required", "id_ed25519.pub"]),
    ("sshPublicKey", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc", ["private key", ".pub"]),
    ("sshPublicKey", "ssh-ed25519 not-base64!", ["not an OpenSSH public key"]),
    ("sshPublicKey", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= me@host",
     ["accept RSA and ED25519 keys only", "ssh-keygen -t ed25519"]),
    ("vpcId", "vpc-xyz", ["not a VPC id", "vpc-0123456789abcdef0"]),
    ("vpcId", "vpc-0123456789abcdef0", ["without rolelab:subnetId"]),
    ("subnetId", "subnet-12", ["not a subnet id"]),
    ("subnetId", "subnet-0123456789abcdef0", ["without rolelab:vpcId"]),
    ("ttlHours", "-1", ["0..72"]),
    ("ttlHours", "1000", ["0..72"]),
    ("ttlHours", "4.5", ["whole number"]),
    ("colour", "blue", ["unknown config key", "known keys"]),
    ("ttlHours", "7_2", ["whole number"]),
    ("ttlHours", "+5", ["whole number"]),
    ("ttlHours", "\u0665", ["whole number"]),  # a Unicode digit int() would take
    ("roleName", "Rôle", ["ASCII"]),
    ("roleName", "Demo\u0663", ["ASCII"]),
    ("students", "1e3", ["not a whole number"]),
    ("students", "3.0", ["not a whole number"]),
    ("studentKeys", "ana: ssh-ed25519 AAAA", ["not a JSON object", "ssh_public_key column"]),
    ("studentKeys", '["ssh-ed25519 AAAA"]', ["not a JSON object"]),
    ("studentKeys", '{"zed": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINv3RdMyzyZRvPrnGCu1IvU1ui88eXyhft6LJ6lghNaD"}',
     ["'zed'", "names no student", "student01"]),
    ("studentKeys", '{"student01": "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= me@host"}',
     ["student01: ecdsa-sha2-nistp256", "RSA and ED25519 keys only", "ssh-keygen -t ed25519"]),
    ("studentKeys", '{"student01": "-----BEGIN OPENSSH PRIVATE KEY-----"}', ["student01", "private key", ".pub"]),
    ("studentKeys", '{"student01": "ssh-ed25519 AAAA\\nssh-rsa AAAA"}', ["not an OpenSSH public key"]),
]


@pytest.mark.parametrize("key, value, words", BAD, ids=[f"{k}={v[:20]!r}" for k, v, _ in BAD])
def test_bad_value_is_one_line_naming_key_value_and_fix(key, value, words):
    with pytest.raises(ConfigError) as caught:
        lab_config.parse({**GOOD, key: value})
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"rolelab:{key} = "), message
    assert caught.value.key == key
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_region_is_validated():
    with pytest.raises(ConfigError, match="aws:region"):
        lab_config.parse(GOOD, region="mars-1")


def test_long_role_name_with_students_exceeds_iam_limit():
    with pytest.raises(ConfigError, match="exceed IAM's 64"):
        lab_config.parse({**GOOD, "roleName": "R" * 50, "students": "a-long-student-name"+",b"})


def test_defaults_describe_the_lesson():
    config = lab_config.parse(GOOD)
    assert config.students == ("student01",) and not config.class_mode
    assert config.role_name_for("student01") == "DemoRoleForEC2"
    assert config.policies == ("IAMReadOnlyAccess",)
    assert config.policy_arns() == ("arn:aws:iam::aws:policy/IAMReadOnlyAccess",)
    assert (config.instance_type, config.ttl_hours, config.imdsv1_demo, config.allow_world_ssh) == ("t3.micro", 4, False, False)


def test_assignments_parse_and_reject_missing_equals():
    assert lab_config.parse_assignments(["students=3", "rolelab:ttlHours=0", "policies=a=b"]) == {
        "students": "3", "ttlHours": "0", "policies": "a=b"}
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        lab_config.parse_assignments(["students"])


def test_a_key_given_twice_is_refused():
    for pairs in (["students=2", "students=3"], ["students=2", "rolelab:students=2"]):
        with pytest.raises(UsageError, match="'students' is given twice"):
            lab_config.parse_assignments(pairs)


def test_a_huge_value_is_cut_in_the_message():
    with pytest.raises(ConfigError) as caught:
        lab_config.parse({**GOOD, "roleName": "x" * 100_000})
    assert len(str(caught.value)) < 200 and "…" in str(caught.value)


def test_pulumi_yaml_declares_every_key_with_the_same_default_and_description():
    project = yaml.safe_load((Path(__file__).resolve().parents[2] / "Pulumi.yaml").read_text())
    declared = project["config"]
    assert set(declared) == lab_config.KEY_NAMES
    for key in lab_config.KEYS:
        entry = declared[key.name]
        default = entry["default"]
        as_string = str(default).lower() if isinstance(default, bool) else str(default)
        assert as_string == key.default, f"{key.name}: Pulumi.yaml default {default!r} != code {key.default!r}"
        assert entry["description"] == key.description, f"{key.name}: descriptions differ"
    assert project["name"] == "rolelab"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}


def test_student_keys_map_roster_names_to_slugs_and_name_their_own_key_pairs():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINv3RdMyzyZRvPrnGCu1IvU1ui88eXyhft6LJ6lghNaD ana@laptop"
    config = lab_config.parse({**GOOD, "students": "Ana María,bo", "studentKeys": json.dumps({"Ana María": key})},
                              stack="fall")
    assert config.student_keys == {"ana-maria": key}
    assert config.physical_names()["key_pairs"] == ["rolelab-fall", "rolelab-fall-ana-maria"]

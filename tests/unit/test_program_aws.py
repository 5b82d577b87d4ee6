"""The program on a real account's terms: its network, names that cannot collide, a pinned AMI,
and a cost guard that survives reboots (checked on what it registers under mocks)."""

from __future__ import annotations

import asyncio
import gc
import json
import re

import pytest
import yaml

from labs.core.errors import ConfigError
from labs.program.costguard import PER_BOOT_PATH
from labs.program.quiet import said_once
from labs.provision.fakecloud import FAKE_VPC, FakeCloud
from labs.provision.mockrun import run_program
from labs.provision.plan import PLACEHOLDERS
from tests.unit.conftest import INSTANCE, KEY_PAIR, ROLE, SECURITY_GROUP, secret_value

GOOD = {"sshCidr": "198.51.100.7/32", "sshPublicKey": PLACEHOLDERS["sshPublicKey"]}


def run(cloud: FakeCloud | None = None, stack: str = "unit", **config: str):
    return run_program(cloud or FakeCloud(), {**GOOD, **config}, stack=stack, region="us-east-1")


def test_default_network_the_group_is_in_the_default_vpc_and_hosts_in_a_public_default_subnet():
    done = run()
    (group,) = done.of_type(SECURITY_GROUP)
    assert group.inputs["vpcId"] == FAKE_VPC
    subnets = [f for tok, args in done.invokes if tok == "aws:ec2/getSubnets:getSubnets" for f in args["filters"]]
    assert {"name": "map-public-ip-on-launch", "values": ["true"]} in subnets
    assert {"name": "availability-zone", "values": ["us-east-1a", "us-east-1b"]} in subnets  # zones offering it
    for instance in done.of_type(INSTANCE):
        assert instance.inputs["subnetId"] == "subnet-0fa4e000000000001", instance.urn
        assert instance.inputs["associatePublicIpAddress"] is True, instance.urn


def test_configured_network_is_used_without_looking_up_the_default():
    done = run(vpcId="vpc-0123456789abcdef0", subnetId="subnet-0123456789abcdef0")
    assert done.of_type(SECURITY_GROUP)[0].inputs["vpcId"] == "vpc-0123456789abcdef0"
    assert {i.inputs["subnetId"] for i in done.of_type(INSTANCE)} == {"subnet-0123456789abcdef0"}
    assert not [tok for tok, _ in done.invokes if tok == "aws:ec2/getVpcs:getVpcs"]


def test_without_a_default_vpc_the_program_says_so_and_names_the_fix():
    with pytest.raises(ConfigError) as caught:
        run(FakeCloud(default_vpc=False))
    assert caught.value.key == "vpcId"
    assert "no default VPC in us-east-1" in str(caught.value) and "create-default-vpc" in str(caught.value)


def test_a_role_of_that_name_made_by_hand_is_refused_not_adopted():
    with pytest.raises(ConfigError) as caught:
        run(FakeCloud(roles={"DemoRoleForEC2": {}}))
    message = str(caught.value)
    assert caught.value.key == "roleName" and "did not make it" in message
    assert "pulumi config set rolelab:roleName DemoRoleForEC2-unit" in message


def test_a_refused_role_is_said_once_not_once_per_output_that_depended_on_it(caplog):
    with pytest.raises(ConfigError):
        run(FakeCloud(roles={"DemoRoleForEC2": {}}))
    loop = asyncio.get_event_loop()
    assert loop.get_exception_handler() is said_once  # the program installs it on the run's loop
    # Each Output built on the failed name holds the error; one is awaited, the others report when collected.
    for error in (ConfigError("roleName", "x", "taken", "rename it"), RuntimeError("a real bug")):
        future = loop.create_future()
        future.set_exception(error)
        del future
        gc.collect()
    reported = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert len(reported) == 1 and "a real bug" in reported[0]  # a bug is still told; the config error once


def test_this_stacks_own_role_is_kept_on_a_second_up():
    done = run(FakeCloud(roles={"DemoRoleForEC2": {"lab": "rolelab", "stack": "unit"}}))
    assert [r.inputs["name"] for r in done.of_type(ROLE)] == ["DemoRoleForEC2"]


def test_another_stacks_role_is_refused():
    with pytest.raises(ConfigError, match="stack 'unit' did not make it"):
        run(FakeCloud(roles={"DemoRoleForEC2": {"lab": "rolelab", "stack": "other"}}))


def test_a_class_lists_the_roles_once_and_reads_only_the_names_that_exist():
    # A running class of 3 whose student02 is new: one listing for all three, GetRole for the two that exist.
    ours = {"lab": "rolelab", "stack": "unit"}
    done = run(FakeCloud(roles={"DemoRoleForEC2-student01": ours, "DemoRoleForEC2-student03": ours}), students="3")
    listings = [args for tok, args in done.invokes if tok == "aws:iam/getRoles:getRoles"]
    assert len(listings) == 1
    pattern = re.compile(listings[0]["nameRegex"])
    assert [pattern.search(f"DemoRoleForEC2-student0{i}") is not None for i in (1, 2, 3, 4)] == [True] * 3 + [False]
    assert pattern.search("DemoRoleForEC2-student011") is None  # anchored: a longer name is not a match
    read = sorted(args["name"] for tok, args in done.invokes if tok == "aws:iam/getRole:getRole")
    assert read == ["DemoRoleForEC2-student01", "DemoRoleForEC2-student03"]
    assert len(done.of_type(ROLE)) == 3


def test_one_foreign_name_in_a_class_is_refused_by_name():
    with pytest.raises(ConfigError, match="DemoRoleForEC2-student02"):
        run(FakeCloud(roles={"DemoRoleForEC2-student02": {}}), students="3")


def test_key_pair_is_named_after_the_stack_and_replaced_delete_first():
    (pair,) = run(stack="class-b").of_type(KEY_PAIR)
    assert pair.inputs["keyName"] == "rolelab-class-b"
    assert pair.delete_before_replace, "a fixed-name key pair must be deleted before its replacement is created"


def test_a_new_ami_release_never_replaces_running_hosts():
    for instance in run().of_type(INSTANCE):
        assert "ami" in instance.ignore_changes, f"{instance.urn}: a new AMI in SSM would replace it"


def test_cost_guard_is_a_per_boot_script_and_a_ttl_change_does_not_replace_hosts():
    for instance in run(ttlHours="3").of_type(INSTANCE):
        user_data = secret_value(instance.inputs["userData"])
        assert user_data.startswith("#cloud-config\n# rolelab-ttl-hours: 3\n")
        (entry,) = yaml.safe_load(user_data)["write_files"]
        assert entry["path"] == PER_BOOT_PATH and entry["permissions"] == "0755"
        assert "ttl_hours=3 " in entry["content"] and entry["content"].startswith("#!/bin/bash\n")
        assert instance.inputs.get("userDataReplaceOnChange") is False, instance.urn


# -- host keys: made by the program, pinned from the outputs, installed by cloud-init ------------------

HOST_KEY = "tls:index/privateKey:PrivateKey"


def _public(state_or_line: str) -> str:
    return " ".join(state_or_line.split()[:2])


@pytest.mark.parametrize("ttl", ["3", "0"])
def test_each_host_gets_its_own_ed25519_host_key_in_its_user_data_as_a_secret(ttl):
    done = run(ttlHours=ttl, students="2")
    keys = {k.parent: k for k in done.of_type(HOST_KEY)}
    instances = done.of_type(INSTANCE)
    assert len(keys) == len(instances) == 4, "one host key per instance"
    for instance in instances:
        key = keys[instance.parent]  # the key of the same LabHost
        assert key.inputs["algorithm"] == "ED25519", key.urn
        config = yaml.safe_load(secret_value(instance.inputs["userData"]))  # a secret, not plain text in the state
        assert config["ssh_keys"]["ed25519_private"].strip() == key.state["privateKeyOpenssh"].strip(), instance.urn
        assert _public(config["ssh_keys"]["ed25519_public"]) == _public(key.state["publicKeyOpenssh"]), instance.urn
        assert set(config) == ({"ssh_keys", "write_files"} if ttl != "0" else {"ssh_keys"}), instance.urn
    assert len({k.state["publicKeyOpenssh"] for k in keys.values()}) == 4, "hosts never share a host key"


def test_the_outputs_carry_each_hosts_public_host_key_and_never_a_private_one():
    done = run(students="2")
    by_instance = {i.id: i for i in done.of_type(INSTANCE)}
    keys = {k.parent: k for k in done.of_type(HOST_KEY)}
    for host in done.outputs["hosts"]:
        instance = by_instance[host["instance_id"]]
        assert host["host_key"] == _public(keys[instance.parent].state["publicKeyOpenssh"]), host["instance_id"]
        assert host["host_key"].startswith("ssh-ed25519 AAAA")
    assert "PRIVATE KEY" not in json.dumps(done.outputs)


# -- students' own keys ----------------------------------------------------------------------------------

ANA_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINv3RdMyzyZRvPrnGCu1IvU1ui88eXyhft6LJ6lghNaD ana@laptop"


def test_a_student_with_an_own_key_gets_a_key_pair_of_it_and_the_instructors_key_through_cloud_init():
    done = run(stack="fall", students="ana,bo", studentKeys=json.dumps({"ana": ANA_KEY}))
    pairs = {p.inputs["keyName"]: p for p in done.of_type(KEY_PAIR)}
    assert set(pairs) == {"rolelab-fall", "rolelab-fall-ana"}
    own = pairs["rolelab-fall-ana"]
    assert own.inputs["publicKey"] == ANA_KEY and own.delete_before_replace, own.urn
    assert own.inputs["tags"]["student"] == "ana" and own.inputs["tags"]["stack"] == "fall"
    assert pairs["rolelab-fall"].inputs["publicKey"] == GOOD["sshPublicKey"]
    for instance in done.of_type(INSTANCE):
        config = yaml.safe_load(secret_value(instance.inputs["userData"]))
        if instance.inputs["tags"]["student"] == "ana":
            assert instance.inputs["keyName"] == "rolelab-fall-ana", instance.urn
            assert config["ssh_authorized_keys"] == [GOOD["sshPublicKey"]], f"{instance.urn}: no instructor key"
            assert "ssh_keys" in config, "the host key stays"
        else:
            assert instance.inputs["keyName"] == "rolelab-fall", instance.urn
            assert "ssh_authorized_keys" not in config, f"{instance.urn}: the key pair is the instructor's already"


def test_without_own_keys_every_host_uses_the_shared_key_pair_only():
    done = run(students="2")
    assert [p.inputs["keyName"] for p in done.of_type(KEY_PAIR)] == ["rolelab-unit"]


def test_a_run_after_a_refused_one_in_the_same_process_starts_clean():
    # A refused run leaves Outputs pending on its own event loop, which its worker closes; the next run (here,
    # the next `local up` of a test session or a warm process) must not wait on them.
    from labs.provision.local import _in_worker

    with pytest.raises(ConfigError):
        _in_worker(lambda: run(FakeCloud(roles={"DemoRoleForEC2": {}})))
    done = _in_worker(lambda: run())
    assert [r.inputs["name"] for r in done.of_type(ROLE)] == ["DemoRoleForEC2"]

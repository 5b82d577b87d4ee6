"""Pinned host keys for aws mode: read from cloud-init's console block, polled with a bounded budget.

The key lines below were generated once with ssh-keygen (ed25519, ecdsa, rsa 2048); the
fingerprints are what `ssh-keygen -lf` printed for them, so a person comparing the report
with ssh's own output sees the same thing.
"""

from __future__ import annotations

import pytest

from labs.core.errors import InfraError
from labs.remote.hostkeys import console_host_keys, host_keys_from_lines, keys_from_console, known_host_name

ED25519 = ("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAINv3RdMyzyZRvPrnGCu1IvU1ui88eXyhft6LJ6lghNaD")
ECDSA = ("ecdsa-sha2-nistp256", "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBI/A2NbL6xyTi9h9HmkSX1cekkGfPVKHEP"
         "BhNpWrPjhKwED93EbX3HxFSJESs75KO46TMQpxXs+Ec1YUziB2KzU=")
RSA = ("ssh-rsa", "AAAAB3NzaC1yc2EAAAADAQABAAABAQCJYoaKEfchuF0cyc2njU0hBpAWUnc6eCPZPqBxWbmXijv1ODjFrAZSqzpXsRvP4nAOIfpA"
       "z7rnpB7eQDJkrV0Xm38iuUOdtPF+s7ErSQd57px4UyNGpS2SgLub2cVrUpQFRa+gxeeYA9Tw6bLsQZEQoAipnfmy68R18H2/8nKC7uoHmQVkXFQi"
       "hoqOdKXUUFQ4h7ce1GV90t7vZlM99PoiaK+UoAepfVq4tGbf7j7X0PEdrlnZMFfKFwzwF7vSlMYXAzw1oOW24Ry/TWq6QjV2hhlqmI6h00x6K2JFa/"
       "3/lO8wS16yHxSfmP+5LRTb8wbmf3NY7bwVdQbGxEThJ0H5")
FINGERPRINTS = {
    "ssh-ed25519": "SHA256:5v0C5qzRKCIvOcR6s3VXWt55ZGtEJQn1rcRHmb2jDvU",
    "ecdsa-sha2-nistp256": "SHA256:9n5BNkmvTWqbI43rSf0kx1LvJH5J5Jc5xSpbcB3bnbM",
    "ssh-rsa": "SHA256:ewhMiILiA9UDZWdwZqDqQM1u3EwVFlUhPkbcQo3xXus",
}

# What `aws ec2 get-console-output` shows on an Amazon Linux 2023 instance after cloud-init's final stage
# (the fingerprint block precedes the key block; lines end in \r\n on the serial console).
CONSOLE = "\r\n".join([
    "[   11.402113] cloud-init[1877]: Cloud-init v. 22.2.2 running 'modules:config' at Tue, 28 May 2024 09:12:40 +0000.",
    "[  OK  ] Finished cloud-config.service - Apply the settings specified in cloud-config.",
    "         Starting cloud-final.service - Execute cloud user/final scripts...",
    "ec2: ",
    "ec2: #############################################################",
    "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
    f"ec2: 256 {FINGERPRINTS['ecdsa-sha2-nistp256']} no comment (ECDSA)",
    f"ec2: 256 {FINGERPRINTS['ssh-ed25519']} no comment (ED25519)",
    "ec2: -----END SSH HOST KEY FINGERPRINTS-----",
    "ec2: #############################################################",
    "-----BEGIN SSH HOST KEY KEYS-----",
    f"{ECDSA[0]} {ECDSA[1]} ",
    f"{ED25519[0]} {ED25519[1]} ",
    "-----END SSH HOST KEY KEYS-----",
    "[   12.093377] cloud-init[1990]: Cloud-init v. 22.2.2 finished at Tue, 28 May 2024 09:12:41 +0000. Datasource "
    "DataSourceEc2Local.  Up 12.07 seconds",
    "",
])


def test_keys_from_a_cloud_init_console():
    assert keys_from_console(CONSOLE) == [ECDSA, ED25519]


@pytest.mark.parametrize("text", [
    "",
    CONSOLE.split("-----BEGIN SSH HOST KEY KEYS-----")[0],  # still booting: fingerprints only
    CONSOLE.split("-----END SSH HOST KEY KEYS-----")[0],  # output cut off inside the block
    "[    0.000000] Linux version 6.1.90-99.173.amzn2023.x86_64",
])
def test_no_complete_key_block_means_no_keys(text):
    assert keys_from_console(text) == []


def test_only_key_lines_inside_the_block_count():
    text = "\n".join([
        f"{RSA[0]} {RSA[1]} outside-before",
        "-----BEGIN SSH HOST KEY KEYS-----",
        "256 SHA256:abc no comment (ED25519)",  # a fingerprint line, not a key
        f"{RSA[0]} {RSA[1]} root@ip-10-0-1-23",
        "ssh-ed25519",  # truncated: no blob
        "-----END SSH HOST KEY KEYS-----",
        f"{ED25519[0]} {ED25519[1]} outside-after",
    ])
    assert keys_from_console(text) == [RSA]


@pytest.mark.parametrize("port, name", [(22, "203.0.113.5"), (2222, "[203.0.113.5]:2222"), (51985, "[203.0.113.5]:51985")])
def test_known_host_name_as_openssh_writes_it(port, name):
    assert known_host_name("203.0.113.5", port) == name


@pytest.mark.parametrize("port", [22, 2222])
def test_host_keys_are_pinned_under_the_name_ssh_looks_up(port):
    keys = host_keys_from_lines([ECDSA, ED25519, RSA], "203.0.113.5", port)
    entry = keys.lookup(known_host_name("203.0.113.5", port))
    assert entry is not None, f"no keys under {known_host_name('203.0.113.5', port)}"
    assert {t: k.fingerprint for t, k in entry.items()} == FINGERPRINTS
    other = "[203.0.113.5]:2222" if port == 22 else "203.0.113.5"
    assert keys.lookup(other) is None, "a key pinned for one port must not be trusted on another"


def test_unusable_console_keys_are_skipped_not_fatal():
    keys = host_keys_from_lines([("ssh-ed25519", "bm90IGEga2V5"), ("sk-unknown@openssh.com", "AAAA"), ED25519],
                                "203.0.113.5", 22)
    entry = keys.lookup("203.0.113.5")
    assert entry is not None and list(entry.keys()) == ["ssh-ed25519"]
    assert entry["ssh-ed25519"].fingerprint == FINGERPRINTS["ssh-ed25519"]


class FakeTime:
    """An injected clock: sleeping moves it forward, nothing really waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_console_is_polled_until_cloud_init_prints_the_keys():
    time = FakeTime()
    answers = iter(["", "", CONSOLE])
    asked: list[str] = []

    def get_console_output(instance_id: str) -> str:
        asked.append(instance_id)
        return next(answers)

    keys = console_host_keys(get_console_output, "i-0abc1234def567890", "203.0.113.5", 22,
                             budget=300, clock=time.clock, sleep=time.sleep)
    assert asked == ["i-0abc1234def567890"] * 3
    assert time.sleeps == [5.0, 7.5]  # backoff between polls
    entry = keys.lookup("203.0.113.5")
    assert entry is not None and set(entry.keys()) == {"ecdsa-sha2-nistp256", "ssh-ed25519"}


def test_keys_already_on_the_console_need_no_wait():
    time = FakeTime()
    console_host_keys(lambda _: CONSOLE, "i-0abc", "203.0.113.5", clock=time.clock, sleep=time.sleep)
    assert time.sleeps == []


def test_console_without_keys_gives_up_within_the_budget_naming_the_instance():
    time = FakeTime()
    calls = []

    def get_console_output(instance_id: str) -> str:
        calls.append(instance_id)
        return CONSOLE.split("-----BEGIN SSH HOST KEY KEYS-----")[0]

    with pytest.raises(InfraError) as raised:
        console_host_keys(get_console_output, "i-0abc1234def567890", "203.0.113.5", 22,
                          budget=60, clock=time.clock, sleep=time.sleep)
    message = str(raised.value)
    assert "i-0abc1234def567890" in message and "60 s" in message and "retry" in message
    assert sum(time.sleeps) <= 60, f"slept {sum(time.sleeps)} s on a 60 s budget"
    assert len(calls) == len(time.sleeps) + 1 >= 3  # it did retry before giving up
    assert max(time.sleeps) <= 30.0


def test_console_keys_are_found_anywhere_in_a_prefixed_line():
    from labs.remote.hostkeys import BEGIN, END, keys_from_console

    text = f"{BEGIN}\n[   12.3] cloud-init[901]: {ED25519[0]} {ED25519[1]} root@ip\n{END}\n"
    assert keys_from_console(text) == [(ED25519[0], ED25519[1])]


def test_console_reader_retries_without_latest_and_turns_errors_into_one_line():
    import boto3
    from botocore.stub import Stubber

    from labs.core.errors import InfraError
    from labs.remote.hostkeys import console_reader

    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(ec2) as stub:
        stub.add_client_error("get_console_output", "UnsupportedOperation",
                              expected_params={"InstanceId": "i-0xen", "Latest": True})
        stub.add_response("get_console_output", {"Output": "console text"}, {"InstanceId": "i-0xen"})
        assert console_reader(ec2)("i-0xen") == "console text"
        stub.add_client_error("get_console_output", "UnauthorizedOperation")
        with pytest.raises(InfraError, match="i-0deny: reading its console output .*UnauthorizedOperation"):
            console_reader(ec2)("i-0deny")


# -- aws mode: the outputs' host key, the console only as a cross-check -------------------------------------

OTHER_ED25519 = ("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIMGRILciBhqiLiUqfZn7mhmNfV29SR9WaGjBPDrab98J")


def aws_host(host_key: str | None):
    from labs.core.outputs import HostRecord

    return HostRecord("student01", "with-role", "i-0abc1234def567890", "203.0.113.5", 22, "ec2-user",
                      "DemoRoleForEC2", (), "http://169.254.169.254", "required", host_key)


def console_with(*keys: tuple[str, str]) -> str:
    from labs.remote.hostkeys import BEGIN, END

    return "\r\n".join([BEGIN, *(f"{t} {b} " for t, b in keys), END, ""])


def test_aws_mode_pins_the_outputs_host_key_and_looks_at_the_console_once():
    from labs.remote.hostkeys import pinned_for_aws

    asked: list[str] = []
    keys = pinned_for_aws(aws_host(" ".join(ED25519)), lambda i: asked.append(i) or console_with(ECDSA, ED25519))
    assert asked == ["i-0abc1234def567890"], "one look, never a poll"
    entry = keys.lookup("203.0.113.5")
    assert entry is not None and list(entry.keys()) == ["ssh-ed25519"], "only the program's key is trusted"
    assert entry["ssh-ed25519"].fingerprint == FINGERPRINTS["ssh-ed25519"]


@pytest.mark.parametrize("console", ["", CONSOLE.split("-----BEGIN SSH HOST KEY KEYS-----")[0], "ecdsa only"])
def test_a_console_without_the_key_yet_is_no_evidence_and_no_wait(console):
    from labs.remote.hostkeys import pinned_for_aws

    text = console_with(ECDSA) if console == "ecdsa only" else console
    keys = pinned_for_aws(aws_host(" ".join(ED25519)), lambda _: text)
    assert keys.lookup("203.0.113.5")["ssh-ed25519"].fingerprint == FINGERPRINTS["ssh-ed25519"]


def test_an_unreadable_console_does_not_stop_pinning_from_the_outputs():
    from labs.remote.hostkeys import pinned_for_aws

    def denied(instance_id: str) -> str:
        raise InfraError(f"{instance_id}: reading its console output for the SSH host keys failed (UnauthorizedOperation)")

    assert pinned_for_aws(aws_host(" ".join(ED25519)), denied).lookup("203.0.113.5") is not None
    assert pinned_for_aws(aws_host(" ".join(ED25519)), None).lookup("203.0.113.5") is not None


def test_a_console_showing_another_key_is_a_host_key_mismatch_naming_both():
    from labs.remote.hostkeys import HostKeyMismatch, fingerprint, pinned_for_aws

    with pytest.raises(HostKeyMismatch) as raised:
        pinned_for_aws(aws_host(" ".join(ED25519)), lambda _: console_with(OTHER_ED25519))
    message = str(raised.value)
    assert "\n" not in message and "student01/with-role" in message and "no command was sent" in message
    assert FINGERPRINTS["ssh-ed25519"] in message and fingerprint(*OTHER_ED25519) in message
    assert raised.value.exit_status == 1


def test_outputs_without_a_host_key_are_pinned_from_the_console_as_before():
    from labs.remote.hostkeys import pinned_for_aws

    keys = pinned_for_aws(aws_host(None), lambda _: CONSOLE)
    assert set(keys.lookup("203.0.113.5")) == {"ecdsa-sha2-nistp256", "ssh-ed25519"}
    with pytest.raises(InfraError, match="no host key"):
        pinned_for_aws(aws_host(None), None)


class FakeEc2:
    def __init__(self, console: str) -> None:
        self.console = console

    def get_console_output(self, InstanceId: str, Latest: bool = False) -> dict:  # noqa: N803 (boto3's names)
        return {"Output": self.console}


def _aws_outputs_file(tmp_path, host_key: str | None):
    import json

    from labs.core.outputs import LabOutputs

    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(LabOutputs("aws", "us-east-1", "dev", (aws_host(host_key),)).to_dict()))
    return path


@pytest.mark.parametrize("console", [console_with(ED25519), ""])
def test_rolelab_ssh_in_aws_mode_pins_the_outputs_key_by_itself(tmp_path, monkeypatch, capsys, console):
    import shlex

    import paramiko

    from labs.cli.main import main
    from labs.provision import operator

    monkeypatch.setattr(operator, "operator_clients", lambda outputs: lambda service: FakeEc2(console))
    code = main(["ssh", "with-role", "--outputs", str(_aws_outputs_file(tmp_path, " ".join(ED25519))), "--print"])
    out = capsys.readouterr().out
    assert code == 0, out
    words = shlex.split(out)
    known_hosts = next(w.split("=", 1)[1] for w in words if w.startswith("UserKnownHostsFile="))
    pinned = paramiko.HostKeys(shlex.split(known_hosts)[0])
    assert {t: k.fingerprint for t, k in pinned.lookup("203.0.113.5").items()} == {
        "ssh-ed25519": FINGERPRINTS["ssh-ed25519"]}
    assert "StrictHostKeyChecking=yes" in out


def test_rolelab_ssh_refuses_a_host_whose_console_disagrees_in_one_line(tmp_path, monkeypatch, capsys):
    from labs.cli.main import main
    from labs.provision import operator

    monkeypatch.setattr(operator, "operator_clients", lambda outputs: lambda service: FakeEc2(console_with(OTHER_ED25519)))
    code = main(["ssh", "with-role", "--outputs", str(_aws_outputs_file(tmp_path, " ".join(ED25519))), "--print"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("rolelab: error: student01/with-role") and "host key" in line


def test_verify_in_aws_mode_pins_each_host_from_the_outputs_and_cross_checks_with_the_console():
    from labs.core.outputs import LabOutputs
    from labs.remote.hostkeys import HostKeyMismatch
    from labs.verify.runner import Verifier

    host = aws_host(" ".join(ED25519))
    outputs = LabOutputs("aws", "us-east-1", "dev", (host,))
    keys = Verifier(outputs).host_keys(host)  # no EC2 API at all: the outputs suffice
    assert keys.lookup("203.0.113.5")["ssh-ed25519"].fingerprint == FINGERPRINTS["ssh-ed25519"]
    disagreeing = Verifier(outputs, operator=lambda service: FakeEc2(console_with(OTHER_ED25519)))
    with pytest.raises(HostKeyMismatch):
        disagreeing.host_keys(host)
    disagreeing._connect(host)  # recorded as the host's refusal, which every check of it then reports
    assert isinstance(disagreeing._dead[host.label], HostKeyMismatch)

"""What a class reads at a terminal: commands that find the lab, the live view, the width, colour.

One class of three (from a roster with a display name) on one stack, shared by every test here;
tests that break a host restore it before they finish.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

import pytest

from labs.cli.main import main
from labs.core.outputs import LabOutputs
from labs.labcloud.procs import wait_for
from labs.provision import local
from tests.offline.conftest import cloud, host_status

STACK = "ux1"


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[LabOutputs]:
    roster = tmp_path_factory.mktemp("roster") / "class.txt"
    roster.write_text("Ana María\nBo\nCy\n")
    local.down(STACK)
    assert main(["local", "up", "--stack", STACK, "--roster", str(roster), "--json"]) == 0
    yield local.read_outputs(STACK)
    local.down(STACK)


def no_pulumi_env() -> dict[str, str]:
    """PATH without a pulumi CLI, as on a student's laptop."""
    return dict(os.environ, PATH=os.pathsep.join(os.path.dirname(p) for p in (sys.executable, "/usr/bin/ssh")))


@pytest.fixture
def without_pulumi(monkeypatch):
    monkeypatch.setenv("PATH", no_pulumi_env()["PATH"])


class crashed_sshd:
    """One host's sshd killed for the block, restarted (and waited for) afterwards."""

    def __init__(self, lab: LabOutputs, host):
        self.lab, self.host = lab, host

    def __enter__(self):
        cloud(self.lab).request("POST", "/faults/sshd", {"action": "crash", "instance_id": self.host.instance_id})
        return self.host

    def __exit__(self, *exc):
        cloud(self.lab).request("POST", "/faults/sshd", {"action": "restart", "instance_id": self.host.instance_id})
        assert wait_for(lambda: host_status(self.lab, self.host)["state"] == "ready", 15)


# -- commands find the lab --------------------------------------------------------------------

def test_verify_finds_a_local_stack_by_name_without_local_or_pulumi(lab, capsys, without_pulumi):
    code = main(["verify", "--stack", STACK, "--quiet", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, [r for r in report["results"] if r["status"] != "pass"]
    assert report["mode"] == "local" and report["stack"] == STACK


def test_a_stack_that_is_not_up_is_named_with_the_stacks_that_are(lab, capsys, without_pulumi):
    code = main(["verify", "--stack", "nosuch", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "stack 'nosuch' is not up locally" in err and STACK in err and "pulumi CLI is not on PATH" not in err
    assert main(["ssh", "with-role", "--local", "--print"]) == 2  # the default stack, 'local', is not up
    assert f"stacks up: {STACK}" in capsys.readouterr().err


def test_student_by_roster_display_name_everywhere(lab, capsys, without_pulumi):
    code = main(["verify", "--stack", STACK, "--student", "Ana María", "--quiet", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and {r["student"] for r in report["results"]} == {"ana-maria"}
    assert main(["ssh", "with-role", "--stack", STACK, "--student", "Ana María", "--print"]) == 0
    port = lab.host("with-role", "ana-maria").port
    assert f"-p {port}" in capsys.readouterr().out
    assert main(["drill", "detach-policy", "--stack", STACK, "--student", "Zed", "--quiet"]) == 2
    assert "students: ana-maria, bo, cy" in capsys.readouterr().err


def test_local_status_shows_who_each_host_is_and_a_dead_sshd_as_down(lab, capsys):
    victim = lab.host("no-role", "bo")
    with crashed_sshd(lab, victim):
        assert main(["local", "status", "--stack", STACK]) == 0
        out = capsys.readouterr().out
    rows = {tuple(line.split()[:2]): line.split() for line in out.splitlines() if line.startswith(lab.students())}
    assert len(rows) == 6, out
    assert rows[("bo", "no-role")][2] == victim.instance_id and rows[("bo", "no-role")][5] == "down", out
    assert rows[("bo", "with-role")][4:] == ["ready", "up", "up"], out

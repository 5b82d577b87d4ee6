"""What a class reads at a terminal: commands that find the lab, the live view, the width, colour.

One class of three (from a roster with a display name) on one stack, shared by every test here;
tests that break a host restore it before they finish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from labs.cli.main import main
from labs.core.outputs import LabOutputs
from labs.labcloud.procs import wait_for
from labs.provision import local
from tests.offline.conftest import cloud, host_status
from tests.offline.terminal import run_in_terminal

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
    err = capsys.readouterr().err
    assert "stack 'local' is not up locally (stacks up: " in err and STACK in err


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


# -- what a terminal shows ----------------------------------------------------------------------

def test_the_default_terminal_view_fits_100_columns_in_colour_and_ends_with_a_short_summary(lab):
    screen = run_in_terminal(["verify", "--stack", STACK], columns=100)
    assert screen.rc == 0, screen.text[-2000:]
    assert len(screen.widest) <= 100, screen.widest
    assert screen.coloured
    after_live = screen.text.rsplit("hosts done", 1)[1]
    lines = [line for line in after_live.splitlines() if line.strip()]
    assert lines[-1].startswith("39 checks: 39 passed, 0 failed, 0 unreachable"), lines
    assert len(lines) <= 3, lines  # no table of 39 rows by default: the class line and the verdict


def test_verbose_after_the_command_shows_every_check_and_no_colour_with_no_color(lab):
    env = dict(os.environ, NO_COLOR="1")
    screen = run_in_terminal(["verify", "--stack", STACK, "-v"], columns=100, env=env)
    assert screen.rc == 0 and not screen.coloured
    assert len(screen.widest) <= 100, screen.widest
    rows = [line for line in screen.text.splitlines() if line.startswith(tuple(f"{s}/" for s in lab.students()))
            and " pass " in line]
    assert len(rows) == 39, screen.text[-3000:]


def test_healthy_results_stream_while_a_dead_host_is_waited_for_and_it_is_said(lab):
    """Piped (a log): plain lines, no colour; the first healthy result long before the dead host's budget."""
    budget = 8.0
    with crashed_sshd(lab, lab.host("no-role", "cy")):
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "labs.cli", "verify", "--stack", STACK, "--json",
                                    "--connect-budget", str(budget)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        seen: list[tuple[float, str]] = [(time.monotonic() - started, line) for line in process.stderr]
        out = process.stdout.read()
        assert process.wait(timeout=60) == 3, out[-1500:]
    first_ok = next(t for t, line in seen if line.startswith("  ok "))
    waits = [line for _, line in seen if "waiting for SSH on cy/no-role (attempt" in line]
    assert first_ok < budget / 2, seen[:5]
    assert len(waits) >= 3 and waits[-1].rstrip().endswith(" s)"), waits
    assert "\x1b[" not in out + "".join(line for _, line in seen)
    dead = [r for r in json.loads(out)["results"] if r["status"] == "unreachable"]
    assert {(r["student"], r["host"]) for r in dead} == {("cy", "no-role")}
    assert all(r["seconds"] >= budget and r["attempts"] >= 5 for r in dead), dead


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rolelab {version('rolelab')}"

"""Where the state lives: a relative ROLELAB_HOME pinned once; a home that cannot be written is exit 2."""

from __future__ import annotations

import errno
import importlib
import logging
import os

import pytest

from labs.core import logs

cli = importlib.import_module("labs.cli.main")  # the module: labs.cli re-exports main() under the same name


def test_a_relative_home_is_made_absolute_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROLELAB_HOME", "state/here")
    assert logs.rolelab_home() == tmp_path / "state" / "here"
    monkeypatch.chdir("/")  # the lab cloud runs in the project directory, sshd in the host's
    assert logs.rolelab_home() == tmp_path / "state" / "here"
    assert os.environ["ROLELAB_HOME"] == str(tmp_path / "state" / "here")  # what child processes inherit


def test_the_cli_pins_a_relative_home_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROLELAB_HOME", "rel")
    seen = []
    monkeypatch.setattr(cli, "cmd_plan", lambda args: seen.append(os.environ["ROLELAB_HOME"]) or 0)
    assert cli.main(["plan"]) == 0
    assert seen == [str(tmp_path / "rel")]


@pytest.fixture
def fresh_logging(monkeypatch):
    """logs.setup() runs once per process; let a test run it again."""
    monkeypatch.setattr(logging.getLogger("rolelab"), "handlers", [])
    monkeypatch.setattr(logs, "_kept_log", None)


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EROFS, "Read-only file system", "{home}/stacks/s/keys/id_ed25519"),
    PermissionError(errno.EACCES, "Permission denied", "{home}/stacks/s"),
])
def test_a_home_that_cannot_be_written_is_exit_2_with_the_fix(error, tmp_path, monkeypatch, capsys, fresh_logging):
    home = tmp_path / "home"
    monkeypatch.setenv("ROLELAB_HOME", str(home))
    if error.filename:
        error.filename = error.filename.format(home=home)

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "cmd_plan", fail)
    assert cli.main(["plan"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and f"ROLELAB_HOME {home}" in line and "internal error" not in line


def test_an_internal_error_never_points_at_a_log_that_cannot_exist(monkeypatch, capsys, fresh_logging):
    monkeypatch.setenv("ROLELAB_HOME", "/proc/rolelab-unit")
    monkeypatch.setattr(cli, "cmd_plan", lambda args: 1 / 0)
    assert cli.main(["plan"]) == 70
    line = capsys.readouterr().err.strip()
    assert "ZeroDivisionError" in line and "/proc/rolelab-unit" not in line and "--verbose" in line


def test_an_error_elsewhere_is_not_blamed_on_the_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ROLELAB_HOME", str(tmp_path / "home"))
    assert logs.home_problem(PermissionError(errno.EACCES, "Permission denied", "/etc/shadow")) is None
    assert logs.home_problem(FileNotFoundError(errno.ENOENT, "missing", str(tmp_path / "home" / "x"))) is None

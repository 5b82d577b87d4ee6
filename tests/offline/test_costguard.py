"""The cost guard's deadline logic, run as the real bash script with a fake clock, IMDS and shutdown.

Nothing here reaches an IMDS: `curl`, `date` and `shutdown` are stand-ins first on PATH.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labs.program.costguard import guard_script

T0 = 1_900_000_000  # the launch, in epoch seconds
HOUR = 3600

FAKES = {
    "date": '#!/bin/bash\nif [ "$*" = "-u +%s" ]; then echo "$FAKE_NOW"; else exec /bin/date "$@"; fi\n',
    "shutdown": '#!/bin/bash\necho "$*" >> "$FAKE_LOG"\n',
    # IMDSv2: a token for the PUT, then the instance's current user data (or no IMDS at all)
    "curl": ('#!/bin/bash\n[ -n "${FAKE_USER_DATA:-}" ] || exit 7\n'
             'case "$*" in *api/token*) echo token;; *user-data*) printf "%s\\n" "$FAKE_USER_DATA";; esac\n'),
}


@pytest.fixture
def boot(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    state, log = tmp_path / "state", tmp_path / "shutdown.log"

    def run(ttl_hours: int, now: int, user_data: str = "") -> str:
        """One boot at `now`; returns the shutdown command it scheduled ('' for none)."""
        script = tmp_path / "guard.sh"
        script.write_text(guard_script(ttl_hours))
        log.write_text("")
        env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin", FAKE_NOW=str(now), FAKE_LOG=str(log),
                   FAKE_USER_DATA=user_data, ROLELAB_STATE_DIR=str(state))
        done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stderr
        return log.read_text().strip()

    return run


def test_first_boot_schedules_the_ttl_from_launch(boot):
    assert boot(4, T0).startswith("-h +240 ")


def test_a_reboot_rearms_the_same_deadline_not_a_fresh_ttl(boot):
    boot(4, T0)
    assert boot(4, T0 + HOUR).startswith("-h +180 "), "a reboot after 1 h must leave 3 h, not 4"


def test_a_boot_after_the_deadline_powers_off_at_once(boot):
    boot(4, T0)
    assert boot(4, T0 + 5 * HOUR).startswith("-h now ")


def test_a_changed_ttl_in_the_current_user_data_moves_the_deadline_from_launch(boot):
    boot(4, T0)
    assert boot(4, T0 + HOUR, user_data="#cloud-config\n# rolelab-ttl-hours: 6\n").startswith("-h +300 ")


def test_ttl_zero_in_the_current_user_data_cancels_the_shutdown(boot):
    boot(4, T0)
    assert boot(4, T0 + HOUR, user_data="#cloud-config\n# rolelab-ttl-hours: 0\n") == "-c"


def test_without_imds_the_launched_ttl_still_applies(boot):
    boot(2, T0)
    assert boot(2, T0 + 90 * 60).startswith("-h +30 ")

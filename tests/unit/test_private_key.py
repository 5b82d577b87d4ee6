"""The private key check: chmod advice only for the user's own key, never for a system file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from labs.core.errors import UsageError
from labs.verify.runner import check_private_key


@pytest.fixture
def foreign_readable_file(tmp_path) -> Path:
    """A world-readable file that belongs to someone else (as root: a copy given to nobody)."""
    if os.geteuid() != 0:
        return Path("/etc/passwd")
    path = tmp_path / "shadow"
    shutil.copy("/etc/hostname", path)
    path.chmod(0o644)
    os.chown(path, 65534, 65534)
    return path


def test_an_own_key_readable_by_others_gets_chmod_advice(tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("key\n")
    key.chmod(0o644)
    with pytest.raises(UsageError, match=f"run: chmod 600 {key}$"):
        check_private_key(str(key))


def test_someone_elses_file_gets_no_chmod_advice(foreign_readable_file):
    with pytest.raises(UsageError) as caught:
        check_private_key(str(foreign_readable_file))
    assert "chmod" not in str(caught.value) and "a private key of your own" in str(caught.value)


def test_an_own_key_with_mode_600_passes(tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("key\n")
    key.chmod(0o600)
    check_private_key(str(key))

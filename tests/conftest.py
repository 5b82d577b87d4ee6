"""Session-wide safety: no real AWS credentials, config or IMDS can be reached from tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SAFE_HOME = Path(tempfile.mkdtemp(prefix="rolelab-test-home-"))
# Only tests/live (opt-in, ROLELAB_LIVE=1) hand this to a subprocess; the session itself never uses it.
ORIGINAL_ENVIRON = dict(os.environ)


def pytest_configure(config: pytest.Config) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(_SAFE_HOME / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(_SAFE_HOME / "no-aws-credentials"),
        ROLELAB_HOME=str(_SAFE_HOME / "rolelab"),
    )


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Files a person may want to look at after a run (reports, screenshots)."""
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path

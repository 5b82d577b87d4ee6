"""Session-wide safety: no real AWS credentials, config or IMDS can be reached from tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

_SAFE_HOME = Path(tempfile.mkdtemp(prefix="rolelab-test-home-"))


def pytest_configure(config: pytest.Config) -> None:
    # Only tests/live (opt-in, ROLELAB_LIVE=1) hand this to a subprocess; the session never uses it.
    # Kept on the config, not imported: `import tests.conftest` would run this file a second time,
    # after the AWS variables below are gone.
    config.rolelab_original_environ = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(_SAFE_HOME / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(_SAFE_HOME / "no-aws-credentials"),
        ROLELAB_HOME=str(_SAFE_HOME / "rolelab"),
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A green run leaves nothing behind; a red one keeps the stacks' logs to read."""
    if exitstatus == 0:
        shutil.rmtree(_SAFE_HOME, ignore_errors=True)
    else:
        print(f"\nrolelab test logs kept in {_SAFE_HOME / 'rolelab' / 'logs'}")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Files a person may want to look at after a run (reports, screenshots)."""
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with slow tests first, the fewest-test ones (a single long run: the soak, the docs) before
    the others: spread over workers a file at a time (scripts/test.sh keeps this order), a long file
    started last would be the whole run's tail. The order within a file, and of the rest, is kept."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    sizes = Counter(item.path for item in items)
    items.sort(key=lambda item: (item.path not in slow_files, sizes[item.path] if item.path in slow_files else 0))

"""Live tests touch a real AWS account: they run only when explicitly asked for, with a CLI and credentials."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def aws_credentials_present(env: dict[str, str]) -> bool:
    """Anything the aws CLI and Pulumi would find credentials in, as the run started."""
    if any(env.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE")):
        return True
    home = Path(env.get("HOME", "~")).expanduser()
    files = [env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials",
             env.get("AWS_CONFIG_FILE") or home / ".aws" / "config"]
    return any(Path(f).is_file() for f in files)


def live_skip_reason(original_environ: dict[str, str]) -> str | None:
    if os.environ.get("ROLELAB_LIVE") != "1":
        return "live AWS tests run only with ROLELAB_LIVE=1 (they create billable resources)"
    if not shutil.which("pulumi"):
        return "the pulumi CLI is not installed"
    if not os.environ.get("ROLELAB_LIVE_STACK"):
        return "set ROLELAB_LIVE_STACK to a configured Pulumi stack (sshCidr, sshPublicKey, aws:region)"
    if not os.environ.get("ROLELAB_LIVE_IDENTITY"):
        return "set ROLELAB_LIVE_IDENTITY to the private key of the stack's sshPublicKey"
    if not aws_credentials_present(original_environ):
        return "no AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE or ~/.aws) in the environment the run started with"
    return None


@pytest.fixture
def original_environ(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment the run started with, AWS credentials included (the session has none)."""
    return dict(request.config.rolelab_original_environ)


def pytest_collection_modifyitems(config, items):
    reason = live_skip_reason(config.rolelab_original_environ)
    for item in items:
        if "tests/live/" in str(item.fspath):
            item.add_marker(pytest.mark.live)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))

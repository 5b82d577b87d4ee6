"""Live tests touch a real AWS account: they run only when explicitly asked for, with a CLI and credentials."""

from __future__ import annotations

import os
import shutil

import pytest


def live_skip_reason() -> str | None:
    if os.environ.get("ROLELAB_LIVE") != "1":
        return "live AWS tests run only with ROLELAB_LIVE=1 (they create billable resources)"
    if not shutil.which("pulumi"):
        return "the pulumi CLI is not installed"
    if not os.environ.get("ROLELAB_LIVE_STACK"):
        return "set ROLELAB_LIVE_STACK to a configured Pulumi stack (sshCidr, sshPublicKey, aws:region)"
    if not os.environ.get("ROLELAB_LIVE_IDENTITY"):
        return "set ROLELAB_LIVE_IDENTITY to the private key of the stack's sshPublicKey"
    return None


def pytest_collection_modifyitems(config, items):
    reason = live_skip_reason()
    for item in items:
        if "tests/live/" in str(item.fspath):
            item.add_marker(pytest.mark.live)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))

"""The whole lesson on a real AWS account: pulumi up, verify, drills, pulumi destroy.

Skipped unless ROLELAB_LIVE=1, the pulumi CLI, a configured stack and its key are present
(the test session itself runs with AWS credentials and IMDS disabled; only this opt-in
subprocess gets the environment the live runner started with).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_e2e_on_aws_preflight_up_verify_drills_destroy_and_nothing_left(original_environ):
    """rolelab e2e runs preflight, up, verify, every drill, destroy, then the sweep's dry run."""
    stack = os.environ["ROLELAB_LIVE_STACK"]
    done = subprocess.run([sys.executable, "-m", "labs.cli", "e2e", "--stack", stack, "--json",
                           "--identity", os.environ["ROLELAB_LIVE_IDENTITY"]],
                          capture_output=True, text=True, timeout=3600, env=original_environ)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["mode"] == "aws" and report["summary"]["failed"] == 0
    assert "preflight:" in done.stderr and "e2e: destroyed" in done.stderr
    assert f"e2e: sweep: nothing tagged stack={stack} is left" in done.stderr, done.stderr[-3000:]

"""Records each call, then plays the Pulumi CLI's part on a local lab stack.

up -> `rolelab local up`; stack output --json -> that stack's outputs; destroy -> `rolelab local down`.
FAKE_PULUMI_FAIL=up|destroy makes that step fail like a provider error would.
"""

import json
import os
import subprocess
import sys

args = sys.argv[1:]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
stack = args[args.index("--stack") + 1] if "--stack" in args else "dev"
rolelab = [sys.executable, "-m", "labs.cli"]
failing = os.environ.get("FAKE_PULUMI_FAIL", "")

if args[0] == "up":
    if failing == "up":
        print("error: creating EC2 Instance: InsufficientInstanceCapacity", file=sys.stderr)
        sys.exit(255)
    sys.exit(subprocess.run([*rolelab, "local", "up", "--stack", stack], stdout=subprocess.DEVNULL).returncode)
if args[:3] == ["stack", "output", "--json"]:
    sys.exit(subprocess.run([*rolelab, "outputs", "--local", "--stack", stack, "--json"]).returncode)
if args[0] == "destroy":
    code = subprocess.run([*rolelab, "local", "down", "--stack", stack], stdout=subprocess.DEVNULL).returncode
    if failing == "destroy":
        print("error: deleting IAM Role: DeleteConflict", file=sys.stderr)
        sys.exit(255)
    sys.exit(code)
print(f"fake pulumi: unexpected arguments {args}", file=sys.stderr)
sys.exit(2)

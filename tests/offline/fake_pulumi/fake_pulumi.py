"""Records each call, then plays the Pulumi CLI's part on a local lab stack.

up -> `rolelab local up`; stack output --json -> that stack's outputs; destroy -> `rolelab local down`.
FAKE_PULUMI_FAIL=up|destroy makes that step fail like a provider error would; FAKE_PULUMI_SLOW_UP=1
makes up wait until it gets SIGINT, then cancel slowly (as the real CLI finishes what is in flight).
config --json -> aws:region us-east-1; cancel -> logged, exit 0; whoami --verbose -> a local backend.
FAKE_PULUMI_PASSPHRASE=required makes every verb that opens the stack's secrets fail, without
PULUMI_CONFIG_PASSPHRASE, with the real CLI's words (as `--non-interactive` does on a local backend).
"""

import json
import os
import signal
import subprocess
import sys
import time

args = sys.argv[1:]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
stack = args[args.index("--stack") + 1] if "--stack" in args else "dev"
rolelab = [sys.executable, "-m", "labs.cli"]
failing = os.environ.get("FAKE_PULUMI_FAIL", "")



def note(event: str) -> None:
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps([f"#{event}", args[0], os.getsid(0) == os.getpid()]) + "\n")


def cancel_slowly(*_):
    note("sigint")
    time.sleep(1.5)  # finishing the operations in flight
    note("cancelled")
    print("error: update canceled", file=sys.stderr)
    sys.exit(255)


signal.signal(signal.SIGINT, lambda *_: note("sigint"))  # a SIGINT to any other verb is recorded
if args[:2] == ["whoami", "--verbose"]:
    print(f"User: tester\nOrganizations: \nBackend URL: file://{os.path.dirname(os.environ['FAKE_PULUMI_LOG'])}")
    sys.exit(0)
if (os.environ.get("FAKE_PULUMI_PASSPHRASE") == "required" and args[0] in ("config", "stack", "up", "destroy")
        and not (os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"))):
    print("error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
          "PULUMI_CONFIG_PASSPHRASE_FILE environment variables", file=sys.stderr)
    sys.exit(255)
if args[0] == "up" and os.environ.get("FAKE_PULUMI_SLOW_UP"):
    signal.signal(signal.SIGINT, cancel_slowly)
    note("waiting")
    time.sleep(120)
    sys.exit(0)
if args[:2] == ["config", "--json"]:
    print(json.dumps({key: {"value": value, "secret": False} for key, value in {
        "aws:region": "us-east-1", "rolelab:sshCidr": "198.51.100.7/32",
        "rolelab:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ci",
    }.items()}))
    sys.exit(0)
if args[0] == "cancel":
    sys.exit(0)
if args[0] == "up":
    if failing == "up":
        print("error: creating EC2 Instance: InsufficientInstanceCapacity", file=sys.stderr)
        sys.exit(255)
    sys.exit(subprocess.run([*rolelab, "local", "up", "--stack", stack], stdout=subprocess.DEVNULL).returncode)
if args[:3] == ["stack", "output", "--json"]:
    sys.exit(subprocess.run([*rolelab, "outputs", "--local", "--stack", stack, "--json"]).returncode)
if args[0] == "destroy":
    if os.environ.get("FAKE_PULUMI_SLOW_UP"):
        note("destroying")
        time.sleep(2)  # long enough for a second Ctrl-C to arrive during it
    code = subprocess.run([*rolelab, "local", "down", "--stack", stack], stdout=subprocess.DEVNULL).returncode
    if failing == "destroy":
        print("error: deleting IAM Role: DeleteConflict", file=sys.stderr)
        sys.exit(255)
    sys.exit(code)
print(f"fake pulumi: unexpected arguments {args}", file=sys.stderr)
sys.exit(2)

"""README.md and docs/LAB.md, run: every block marked runnable, against the offline lab, in order.

See tests/offline/docs.py for the markers and how documented output is compared. Each file's
blocks share one stack (the default, `local`, as the docs say), brought up by the docs' own
`rolelab local up` and taken down afterwards whatever happened.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from labs.provision import local
from tests.offline.docs import FENCE, Block, missing, runnable_blocks
from tests.offline.terminal import run_in_terminal

ROOT = Path(__file__).resolve().parents[2]
DOCS = {"README.md": ROOT / "README.md", "LAB.md": ROOT / "docs" / "LAB.md"}
AWS_ONLY = re.compile(r"--outputs|pulumi|--identity|rolelab e2e|ROLELAB_LIVE")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """Where a reader stands: a checkout whose .venv and scripts lead to this tree's rolelab."""
    root = tmp_path_factory.mktemp("checkout")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (root / "scripts").mkdir()
    rolelab = bin_dir / "rolelab"
    rolelab.write_text(f'#!/bin/sh\nexec {sys.executable} -m labs.cli "$@"\n')
    (bin_dir / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    (root / "scripts" / "demo.sh").write_text(f'#!/bin/sh\nexec "{rolelab}" demo "$@"\n')
    for script in (rolelab, root / "scripts" / "demo.sh"):
        script.chmod(0o755)
    return root


# Blocks that make and remove a stack of their own, so what they print does not depend on what ran
# before: both files open with `./scripts/demo.sh` (the whole lesson, the longest block). It runs once
# per session of this module; each file's documented output and exit status are checked against that run.
SELF_CONTAINED = {"./scripts/demo.sh"}
_self_contained_runs: dict[str, tuple[int, str]] = {}


def run(block: Block, checkout: Path) -> tuple[int, str]:
    command = block.code.split("#", 1)[0].strip()
    if command in SELF_CONTAINED and not block.options:
        if command not in _self_contained_runs:
            _self_contained_runs[command] = run_in_checkout(block, checkout)
        return _self_contained_runs[command]
    return run_in_checkout(block, checkout)


def run_in_checkout(block: Block, checkout: Path) -> tuple[int, str]:
    env = dict(os.environ, PATH=f"{checkout / '.venv' / 'bin'}:{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    screen = run_in_terminal([], columns=120, env=env, program=["bash", "-c", block.script()], cwd=str(checkout),
                             term="dumb", timeout=240)
    return screen.rc, screen.text


@pytest.fixture
def default_stack() -> Iterator[None]:
    local.down(local.DEFAULT_STACK)
    try:
        yield
    finally:
        local.down(local.DEFAULT_STACK)


@pytest.mark.slow  # about two minutes: the demo, a class of three, every ssh example
@pytest.mark.parametrize("name", DOCS)
def test_every_runnable_block_runs_and_prints_what_the_docs_say(name, checkout, default_stack):
    blocks = runnable_blocks(DOCS[name])
    assert blocks, f"{name} has no runnable blocks"
    problems = []
    shell: dict[str, list[str]] = {}  # on=HOST blocks: what was typed in that host's shell before
    for block in blocks:
        host = block.options.get("on")
        if host:  # one session per host: earlier lines run again, quietly, for their variables
            earlier = shell.setdefault(host, [])
            own = block.code
            block = replace(block, code="".join(f"{{ {c}\n}} >/dev/null 2>&1\n" for c in earlier) + own)
            earlier.append(own)
        rc, printed = run(block, checkout)
        want = int(block.options.get("rc", 0))
        if rc != want:
            problems.append(f"{block.source}: exit {rc}, documented {want}\n{printed[-1500:]}")
        elif block.expected is not None and (line := missing(block.expected, printed)) is not None:
            problems.append(f"{block.source}: the documented line\n    {line}\nis not in what it printed:\n"
                            f"{printed[-2500:]}")
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("name", DOCS)
def test_every_offline_rolelab_block_is_runnable_or_says_why_not(name):
    """A new offline example cannot be added without being run (or a reason beside it)."""
    lines = DOCS[name].read_text(encoding="utf-8").splitlines()
    unmarked = []
    for number, line in enumerate(lines):
        fence = FENCE.match(line)
        if not fence or fence.group(1) != "bash":
            continue
        body = []
        for rest in lines[number + 1:]:
            if FENCE.match(rest):
                break
            body.append(rest)
        text = "\n".join(body)
        before = lines[number - 1] if number else ""
        if "rolelab " in text and not AWS_ONLY.search(text) and not before.startswith(("<!-- runnable",
                                                                                       "<!-- not runnable")):
            unmarked.append(f"{name}:{number + 1}: {body[0]}")
    assert not unmarked, "offline examples that no test runs:\n" + "\n".join(unmarked)


def test_documented_output_matches_in_order_with_placeholders_for_what_changes():
    documented = "stack 'local' up in 6.4 s\n...\nstudent01  no-role  i-26c0b3b893eb04dea  127.0.0.1:39427\n" \
                 "Try: ...list-users"
    printed = "stack 'local' up in 12.0 s\nheader\nstudent01  no-role  i-7232af3c6636b8b36  127.0.0.1:31946\n" \
              "Try: rolelab ssh with-role -- aws iam list-users\n"
    assert missing(documented, printed) is None
    assert missing("Try: ...list-users\nstudent01  no-role", printed) == "student01 no-role"  # order matters
    assert missing("24 checks: 24 passed", "30 checks: 30 passed") == "24 checks: 24 passed"  # counts are not times


def test_the_readme_aws_section_sets_up_the_backend_and_says_why_a_sandbox_account():
    readme = DOCS["README.md"].read_text(encoding="utf-8")
    section = readme.split("## Running it on AWS (aws mode)", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in section.splitlines()]
    login = next(i for i, c in enumerate(commands) if c.startswith("pulumi login"))
    passphrase = next(i for i, c in enumerate(commands) if c.startswith("export PULUMI_CONFIG_PASSPHRASE="))
    init = next(i for i, c in enumerate(commands) if c.startswith("pulumi stack init"))
    assert login < passphrase < init, "the backend (login, passphrase) comes before the stack"
    sandbox = next(s for s in " ".join(section.split()).split(". ") if "sandbox account" in s)
    assert "IAMReadOnlyAccess" in sandbox and "whole account's IAM" in sandbox, sandbox
    assert "AmazonS3FullAccess" in sandbox and "every bucket" in sandbox, sandbox
    assert "ROLELAB_KEY_PASSPHRASE" in section and "ssh-agent" in section

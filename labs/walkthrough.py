"""`rolelab demo --step`: the lesson narrated for a live class, stage by stage.

Each stage says what it is about to show and the exact command, runs it for real, shows
the real output (secrets masked), says whether it matched the lesson, then waits for
Enter. Without a terminal it runs straight through. Console actions are undone when
their stage ends, so every stage starts from the lab as declared.
"""

from __future__ import annotations

import sys
import textwrap
import time
from typing import Callable, TextIO

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_result, stop_before_delay, wait_exponential

from labs.operator import Clients
from labs.outputs import LabOutputs
from labs.redact import redact
from labs.scenario import LESSON, ConsoleStep, HostStep, Stage
from labs.verify.checks import Check
from labs.verify.classify import Outcome, classify
from labs.verify.result import CommandResult
from labs.verify.runner import CheckResult, Status, Verifier

OUTCOMES = {o.value for o in Outcome}


def observe(step: HostStep, result: CommandResult) -> str:
    """An aws command is judged like verify judges it; anything else by the text it printed."""
    if step.expect in OUTCOMES:
        return str(classify(result))
    return step.expect if step.expect in result.stdout + result.stderr else "not seen"


class Walkthrough:
    def __init__(self, outputs: LabOutputs, verifier: Verifier, operator: Clients, student: str,
                 out: TextIO | None = None, pause: Callable[[], None] | None = None, settle: float = 10.0):
        self.outputs, self.verifier, self.operator, self.student = outputs, verifier, operator, student
        self.out = out or sys.stdout
        self.pause = pause
        self.settle = settle
        self.results: list[CheckResult] = []

    def say(self, text: str = "", indent: str = "") -> None:
        print(textwrap.indent(text, indent) if indent else text, file=self.out, flush=True)

    def run(self, stages: tuple[Stage, ...] = LESSON) -> list[CheckResult]:
        for number, stage in enumerate(stages, start=1):
            self.say(f"\n== Stage {number}/{len(stages)}: {stage.title}")
            self.say(textwrap.fill(stage.explain, 92, initial_indent="   ", subsequent_indent="   "))
            undo: list[Callable[[], None]] = []
            try:
                for index, step in enumerate(stage.steps, start=1):
                    if isinstance(step, HostStep):
                        self._host_step(f"{number}.{index}", step)
                    else:
                        self._console_step(f"{number}.{index}", step, undo)
            finally:
                for action in reversed(undo):
                    action()
                if undo:
                    self.say("   (the lab is put back as declared)")
            if self.pause and number < len(stages):
                self.pause()
        return self.results

    def _record(self, step_id: str, host, step_text: str, expected: str, observed: str, seconds: float,
                result: CommandResult | None) -> None:
        check = Check(f"step-{step_id}", host, step_text, step_text, expected, evaluate=lambda _: observed,
                      phase=f"stage {step_id.split('.')[0]}")
        status = Status.PASS if observed == expected else Status.FAIL
        self.results.append(CheckResult(check, status, observed, 1, seconds, result=result))
        mark = "as the lesson says" if status is Status.PASS else "NOT as the lesson says"
        self.say(f"   -> expected {expected}, observed {observed}: {mark}")

    def _host_step(self, number: str, step: HostStep) -> None:
        host = self.outputs.host(step.host, self.student)
        command = step.command.format(imds=host.imds_endpoint)
        self.say(f"\n   [{host.name}] $ {command}")
        session = self.verifier.session(host)
        started = time.monotonic()
        seen: list[CommandResult] = []

        def attempt() -> str:
            seen.append(session.run(command))
            return observe(step, seen[-1])

        budget = self.settle if step.eventual else 0.0
        observed = Retrying(retry=retry_if_result(lambda o: o != step.expect), stop=stop_before_delay(budget),
                            wait=wait_exponential(multiplier=0.25, max=2.0),
                            retry_error_callback=lambda state: state.outcome.result())(attempt)
        shown = redact((seen[-1].stdout + seen[-1].stderr).strip())
        lines = shown.splitlines()
        self.say("\n".join(lines[:12] + ([f"... ({len(lines) - 12} more lines)"] if len(lines) > 12 else [])),
                 indent="     ")
        if len(seen) > 1:
            self.say(f"   (took {time.monotonic() - started:.1f} s and {len(seen)} tries: IAM propagates changes)")
        self._record(number, host, command, step.expect, observed, time.monotonic() - started, seen[-1])

    def _console_step(self, number: str, step: ConsoleStep, undo: list[Callable[[], None]]) -> None:
        with_role = self.outputs.host("with-role", self.student)
        cli = step.cli.format(role=with_role.role, policy=(with_role.policies or ("",))[0],
                              no_role_id=self.outputs.host("no-role", self.student).instance_id,
                              with_role_id=with_role.instance_id)
        self.say(f"\n   [console] {step.says}\n   [or: $ {cli}]")
        started = time.monotonic()
        try:
            restore = step.action(self.operator, self.outputs, self.student)
            observed = "done"
            if restore:
                undo.append(restore)
        except ClientError as error:
            observed = error.response["Error"]["Code"]
            self.say(f"     An error occurred ({observed}): {error.response['Error'].get('Message', '')}")
        expected = step.refused_with or "done"
        self._record(number, with_role, cli, expected, observed,
                     time.monotonic() - started, None)


def enter_to_continue(stream: TextIO = sys.stdin) -> Callable[[], None] | None:
    """Wait for Enter between stages, but only when a person is at a terminal."""
    if not stream.isatty():
        return None
    return lambda: input("\n   [Enter] for the next stage ")

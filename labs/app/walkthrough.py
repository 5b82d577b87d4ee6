"""`rolelab demo --step`: the lesson narrated for a live class, stage by stage, student by student.

Each stage says what it is about to show and the exact command, runs it for real, shows the
real output (secrets masked), says whether it matched the lesson, then waits for Enter.
Expectations come from the hosts' state (labs.lesson.stages), so every config that verify
accepts narrates correctly. Narration goes to stderr: with --json, stdout stays the report.
Console actions are undone when their stage ends, so every stage starts from the lab as declared.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from botocore.exceptions import ClientError

from labs.app.sequence import LabRun
from labs.core.awserrors import api_error, infra_errors
from labs.core.outputs import HostRecord
from labs.core.redact import redact
from labs.lesson.actions import Target, Undo
from labs.lesson.checks import derive_checks, lab_policies
from labs.lesson.findings import Finding, Status, observation
from labs.lesson.stages import LESSON, ConsoleStep, HostStep, Stage

SHOWN_LINES = 12


class Walkthrough:
    def __init__(self, run: LabRun, out: TextIO | None = None, pause: Callable[[], None] | None = None):
        self.run = run
        self.out = out or sys.stderr
        self.pause = pause
        self.recap: list[tuple[str, str, int, int]] = []  # (student, stage, as the lesson says, steps)

    def say(self, text: str = "", indent: str = "") -> None:
        print(textwrap.indent(text, indent) if indent else text, file=self.out, flush=True)

    def narrate(self, students: tuple[str, ...], stages: tuple[Stage, ...] = LESSON) -> list[Finding]:
        found: list[Finding] = []
        for student in students:
            if len(students) > 1:
                self.say(f"\n##### Student {student}")
            found += self.student(Target(self.run.outputs, student), stages)
        self.say_recap()
        return found

    def student(self, target: Target, stages: tuple[Stage, ...]) -> list[Finding]:
        found: list[Finding] = []
        for number, stage in enumerate(stages, start=1):
            found += self.stage(target, number, stage, len(stages))
            if self.pause and number < len(stages):
                self.pause()
        return found

    def stage(self, target: Target, number: int, stage: Stage, of: int) -> list[Finding]:
        values = target.cli_values()
        self.say(f"\n== Stage {number}/{of}: {stage.title}")
        self.say(textwrap.fill(stage.explain.format(role=values["role"], policy=values["policy"].rsplit("/", 1)[-1]),
                               92, initial_indent="   ", subsequent_indent="   "))
        hosts = {h.name: h for h in target.hosts()}
        undo: list[Undo] = []
        found: list[Finding] = []
        try:
            for index, step in enumerate(stage.steps, start=1):
                phase = f"stage {number}.{index}"
                if isinstance(step, ConsoleStep):
                    found.append(self._console(target, phase, step, hosts, undo))
                elif step.host in hosts:
                    found.append(self._host(phase, hosts[step.host], step))
        finally:
            for action in reversed(undo):
                with infra_errors("putting the lab back"):
                    action()
            if undo:
                self.say("   (the lab is put back as declared)")
        good = sum(f.status is Status.PASS for f in found)
        self.recap.append((target.student, stage.shows or stage.title, good, len(found)))
        return found

    def _host(self, phase: str, host: HostRecord, step: HostStep) -> Finding:
        check = next(c for c in derive_checks(host, lab_policies(self.run.outputs.hosts, host.student), self.run.outputs.region)
                     if c.id == step.check)
        self.say(f"\n   [{host.label}] $ {check.title}")
        result = self.run.check([replace(check, phase=phase)])[0]
        if result.evidence is not None:
            lines = redact((result.evidence.stdout + result.evidence.stderr).strip()).splitlines()
            more = [f"... ({len(lines) - SHOWN_LINES} more lines)"] if len(lines) > SHOWN_LINES else []
            self.say("\n".join(line[:100] for line in lines[:SHOWN_LINES]) + ("\n" + more[0] if more else ""),
                     indent="     ")
        if result.attempts > 1:
            self.say(f"   (took {result.seconds:.1f} s and {result.attempts} tries: IAM propagates changes)")
        self._verdict(result)
        return result

    def _console(self, target: Target, phase: str, step: ConsoleStep, hosts: dict[str, HostRecord],
                 undo: list[Undo]) -> Finding:
        action = step.action
        cli = action.cli_line(target)
        self.say(f"\n   [console] {action.says}\n   [or: $ {cli}]")
        started = time.monotonic()
        try:
            with infra_errors(f"{action.name} for {target.student}"):
                restore = action.apply(self.run.operator, target)
            observed = "done"
            if restore:
                undo.append(restore)
            hosts.update({h.name: h for h in action.after(target)})  # later steps expect the new state
        except ClientError as error:
            observed, message = api_error(error)
            self.say(f"     An error occurred ({observed}): {message}")
        result = self.run.record(observation(phase, target.with_role, action.name, cli, action.refused_with or "done",
                                             observed, time.monotonic() - started))
        self._verdict(result)
        return result

    def _verdict(self, result: Finding) -> None:
        mark = "as the lesson says" if result.status is Status.PASS else "NOT as the lesson says"
        self.say(f"   -> expected {result.expected}, observed {result.observed}: {mark}")
        if result.hint and result.status is not Status.PASS:
            self.say(f"      hint: {result.hint}")

    def say_recap(self) -> None:
        self.say("\n== Recap: what each stage showed")
        for student, shows, good, total in self.recap:
            mark = "ok  " if good == total else "FAIL"
            self.say(f"   {mark} {student:<16} {good}/{total}  {shows}")


def enter_to_continue(stream: TextIO = sys.stdin) -> Callable[[], None] | None:
    """Wait for Enter between stages, but only when a person is at a terminal."""
    if not stream.isatty():
        return None
    return lambda: input("\n   [Enter] for the next stage ")

"""`rolelab`: one command line for instructors, students and CI. Commands stay thin."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from botocore.exceptions import ClientError, NoCredentialsError

from labs.core import logs
from labs.core.awserrors import ENDPOINT_ERRORS, NO_CREDENTIALS_FIX, api_error, endpoint_error
from labs.core.errors import ExitStatus, InfraError, RolelabError, UsageError
from labs.core.signals import stop_signals_interrupt
from labs.labcloud.paths import DEFAULT_STACK  # every command's default stack


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other error here."""

    def error(self, message: str) -> NoReturn:
        # main() prints the "rolelab: error:" prefix; a subcommand's own name still helps.
        where = self.prog.removeprefix("rolelab").strip()
        raise UsageError(f"{where + ': ' if where else ''}{message} (see {self.prog} --help)")


def stack_name(text: str) -> str:
    """--stack: empty would silently fall back to the default stack."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a stack name cannot be empty; e.g. --stack local")
    return text


def seconds(low: float, high: float, low_inclusive: bool) -> Callable[[str], float]:
    """A finite number of seconds within bounds: nan or inf would make a wait endless."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (low <= value if low_inclusive else low < value) or not value <= high:
            bound = "≥" if low_inclusive else ">"
            raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a number of seconds {bound} {low:g} and ≤ {high:g}")
        return value

    parse.__name__ = "seconds"
    return parse


def _config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", action="append", default=[], metavar="KEY=VALUE",
                        help="a rolelab: config value, e.g. students=3 (repeatable)")
    parser.add_argument("--roster", metavar="FILE", default=None,
                        help="the class: one student name per line, or CSV with a 'name' column")


def config_values(args: argparse.Namespace) -> dict[str, str]:
    """--config pairs, with the students from --roster when one is given."""
    from pathlib import Path

    from labs.program.config import parse_assignments
    from labs.program.roster import read_roster_keys, students_value

    values = parse_assignments(args.config)
    if args.roster:
        if "students" in values:
            raise UsageError("--roster and --config students=... both name the class; keep one")
        names, keys = read_roster_keys(Path(args.roster),
                                       on_ignored=lambda line: print(f"rolelab: {line}", file=sys.stderr))
        values["students"] = students_value(names)
        if keys:
            if "studentKeys" in values:
                raise UsageError("--roster's ssh_public_key column and --config studentKeys=... both give the "
                                 "students' keys; keep one")
            values["studentKeys"] = json.dumps(keys)
    return values


def _stack_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", "-s", default=None, type=stack_name, metavar="S",
                        help=f"stack name (default: {DEFAULT_STACK})")


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="rolelab", description="The 'IAM Roles for EC2' lab: plan it, run it offline or "
                           "on AWS, verify it over SSH, drill it. Exit codes: 0 all passed, 1 the lab is wrong, "
                           "2 usage or config error, 3 infrastructure unreachable.")
    parser.add_argument("--version", action="version", version=f"rolelab {package_version()}")
    parser.add_argument("--verbose", "-v", action="count", default=0,
                        help="every check, whole values (-vv: also debug logs on stderr); before or after the command")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    plan = sub.add_parser("plan", help="print what `pulumi up` would create (offline, no AWS, no CLI)")
    _config_flag(plan)
    _stack_flag(plan)
    plan.add_argument("--region", default=None, help="aws:region (default us-east-1)")
    plan.add_argument("--json", action="store_true", help="machine-readable resources and outputs")
    plan.set_defaults(func=cmd_plan)

    roster = sub.add_parser("roster", help="the `pulumi config set` lines for a roster (aws mode): the students "
                                           "and their own SSH keys; eval them or paste them")
    roster.add_argument("file", help="the roster: one name per line, or CSV with a 'name' (and 'ssh_public_key') column")
    roster.set_defaults(func=cmd_roster)

    local = sub.add_parser("local", help="the offline lab cloud: up, down, status, list")
    local_sub = local.add_subparsers(dest="local_command", required=True, parser_class=OneLineParser)
    up = local_sub.add_parser("up", help="apply the program to a local lab cloud (moto + IMDS + sshd)")
    _stack_flag(up)
    _config_flag(up)
    up.add_argument("--region", default=None, help="aws:region for the lab cloud (default us-east-1)")
    up.add_argument("--json", action="store_true", help="print the outputs as JSON")
    up.add_argument("--student", action="append", default=None,
                    help="on a running stack: repair only this student's lab (repeatable)")
    up.add_argument("--wait", action="store_true", help="if another command holds the stack, wait for it")
    up.set_defaults(func=cmd_local_up)
    preview = local_sub.add_parser("preview", help="what `local up` would change on the running stack, drift "
                                                   "included; changes nothing")
    _stack_flag(preview)
    _config_flag(preview)
    preview.add_argument("--student", action="append", default=None, help="only this student (repeatable)")
    preview.add_argument("--json", action="store_true")
    preview.set_defaults(func=cmd_local_preview)
    down = local_sub.add_parser("down", help="stop the lab cloud and every process it started; idempotent")
    _stack_flag(down)
    down.add_argument("--wait", action="store_true", help="if another command holds the stack, wait for it")
    down.set_defaults(func=cmd_local_down)
    listing = local_sub.add_parser("list", help="every local stack that is up (or orphaned), its hosts and health")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_local_list)
    status = local_sub.add_parser("status", help="the lab cloud's PID, endpoint, state and hosts")
    _stack_flag(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_local_status)

    outputs = sub.add_parser("outputs", help="the stack outputs (the contract verification reads)")
    _target_flags(outputs)
    outputs.add_argument("--json", action="store_true")
    outputs.set_defaults(func=cmd_outputs)

    ssh = sub.add_parser("ssh", help="print or run the exact OpenSSH command for a host")
    ssh.add_argument("host", help="no-role, with-role or imdsv1")
    ssh.add_argument("--student", default=None, help="which student's host (class mode): slug or roster name")
    _target_flags(ssh)
    ssh.add_argument("--identity", "-i", default=None, help="private key (aws mode)")
    ssh.add_argument("--print", action="store_true", help="only print the command")
    ssh.epilog = "Anything after -- is run on the host, e.g. rolelab ssh with-role -- aws iam list-users"
    ssh.set_defaults(func=cmd_ssh)
    verify = sub.add_parser("verify", help="SSH to every host and check the lesson; exit 0/1/2/3")
    verify.add_argument("--student", action="append", default=None,
                        help="only this student (repeatable; slug or roster name)")
    _target_flags(verify)
    _report_flags(verify)
    _ssh_flags(verify)
    verify.set_defaults(func=cmd_verify)

    drill = sub.add_parser("drill", help="a console action of the lesson, then watch the hosts react")
    from labs.lesson.drills import DRILLS

    drill.add_argument("name", choices=list(DRILLS))
    drill.add_argument("--i-understand", action="store_true",
                       help="bad-practice in aws mode: puts a real access key on an instance, then deletes it")
    drill.add_argument("--student", action="append", default=None,
                       help="only this student (repeatable; slug or roster name)")
    _target_flags(drill)
    _report_flags(drill)
    _ssh_flags(drill)
    drill.set_defaults(func=cmd_drill)

    demo = sub.add_parser("demo", help="the whole lesson offline: up, verify, drills, report, down")
    _config_flag(demo)
    demo.add_argument("--stack", "-s", default=None, type=stack_name, metavar="S",
                      help="the demo's own stack, made and removed again (default: demo, so a stack kept up "
                           "is never touched)")
    demo.add_argument("--region", default=None)
    _report_flags(demo)
    demo.add_argument("--student", action="append", default=None,
                      help="only this student of the class (repeatable; --step narrates each in turn)")
    demo.add_argument("--exercise", action="store_true",
                      help="play a student: an exercise lab, each step with the student's console, `check` after "
                           "each, then the two classic mistakes caught")
    demo.add_argument("--step", action="store_true",
                      help="narrate the lesson stage by stage for a live class (waits for Enter at a terminal)")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("check", help="grade each student's progress in the lesson (exercise mode); changes nothing")
    _target_flags(check)
    check.add_argument("--student", action="append", default=None, help="only this student (repeatable)")
    check.add_argument("--json", action="store_true", help="steps per student, for an LMS")
    check.add_argument("--html", metavar="FILE", default=None, help="also write the class progress grid")
    check.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                       help="re-check every SECONDS until every step is done (or Ctrl-C)")
    check.add_argument("--identity", "-i", default=None, help="SSH private key (aws mode; local mode knows it)")
    check.add_argument("--quiet", "-q", action="store_true", help="no live progress")
    check.set_defaults(func=cmd_check)

    env = sub.add_parser("env", help="export lines for a student's lab console (exercise mode, offline)")
    _target_flags(env)
    env.add_argument("--student", default=None, help="whose console (class mode)")
    env.set_defaults(func=cmd_env)
    console = sub.add_parser("console", help="a shell with a student's lab console (exercise mode, offline)")
    _target_flags(console)
    console.add_argument("--student", default=None, help="whose console (class mode)")
    console.set_defaults(func=cmd_console)

    e2e = sub.add_parser("e2e", help="course CI on AWS: pulumi up, verify, drills, then pulumi destroy (always)")
    e2e.add_argument("--stack", "-s", required=True, type=stack_name, metavar="S",
                     help="the Pulumi stack (configured beforehand)")
    _report_flags(e2e)
    _ssh_flags(e2e)
    e2e.set_defaults(func=cmd_e2e)

    preflight = sub.add_parser("preflight", help="is the account ready for `pulumi up`? read-only; exit 0/1/2/3")
    preflight.add_argument("--local", action="store_true", help="check a local stack's lab cloud instead (it must be up)")
    _stack_flag(preflight)
    _config_flag(preflight)
    preflight.set_defaults(func=cmd_preflight)

    from labs.app import sweep

    sweep.add_parser(sub)
    _verbose_everywhere(parser)
    return parser


def _verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """-v after the subcommand too (`rolelab verify -v`), without resetting one given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument("--verbose", "-v", action="count", default=argparse.SUPPRESS,
                                 help="every check, whole values (-vv: also debug logs)")
                _verbose_everywhere(sub)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rolelab")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _report_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON (progress stays on stderr)")
    parser.add_argument("--junit", metavar="FILE", default=None, help="also write JUnit XML (one testcase per check)")
    parser.add_argument("--html", metavar="FILE", default=None, help="also write the class report page (one file)")
    parser.add_argument("--settle", type=seconds(0, 3600, low_inclusive=True), default=None, metavar="S",
                        help="seconds an eventually-consistent expectation may take (aws 120, local 10)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no live progress")


def _ssh_flags(parser: argparse.ArgumentParser) -> None:
    """For commands that connect to a stack's hosts themselves (demo makes and knows its own)."""
    parser.add_argument("--identity", "-i", default=None, help="SSH private key (aws mode; local mode knows it)")
    parser.add_argument("--connect-budget", type=seconds(0, 3600, low_inclusive=False), default=None, metavar="S",
                        help="seconds to keep retrying SSH to a host that refuses or times out (aws 180, local 15)")


def _target_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local", action="store_true",
                        help="the offline lab cloud (the default whenever the stack is up locally)")
    _stack_flag(parser)
    parser.add_argument("--outputs", default=None, metavar="FILE", help="outputs JSON (aws mode, no Pulumi CLI)")


def stacks_up() -> list[str]:
    """Local stacks whose outputs exist (what a person can verify, ssh to or drill right now)."""
    from labs.labcloud.paths import StackPaths
    from labs.provision import local

    return [s for s in local.stacks() if StackPaths.for_stack(s).outputs.exists()]


def _no_stack(stack: str, why: str) -> UsageError:
    up = stacks_up()
    listed = f"stacks up: {', '.join(up)}; pass --stack NAME" if up else "no local stack is up"
    return UsageError(f"stack {stack!r} is not up locally ({listed}); start it with "
                      f"`rolelab local up{'' if stack == DEFAULT_STACK else ' --stack ' + stack}`{why}")


def resolve_outputs(args: argparse.Namespace):
    """Where the lab is: --outputs FILE (aws); else the local stack of that name when it is up
    (no --local needed); else the Pulumi CLI's stack outputs (aws), when the CLI is there."""
    import shutil
    from pathlib import Path

    from labs.core import outputs as lab_outputs
    from labs.labcloud.paths import StackPaths
    from labs.provision import local

    if args.outputs:
        return lab_outputs.load(Path(args.outputs))
    stack = args.stack or DEFAULT_STACK
    if StackPaths.for_stack(stack).outputs.exists():
        return local.read_outputs(stack)
    if args.local:
        raise _no_stack(stack, "")
    if shutil.which("pulumi") is None:
        raise _no_stack(stack, "; for aws mode install the Pulumi CLI or pass --outputs FILE")
    from labs.provision import pulumi_cli

    return pulumi_cli.stack_outputs(args.stack)


def resolve_student(outputs, name: str) -> str:
    """A student as the stack names them: the slug ('ana-maria') or the roster's name ('Ana María')."""
    from labs.program.roster import sanitize

    students = outputs.students()
    for candidate in (name, sanitize(name)):
        if candidate in students:
            return candidate
    raise UsageError(f"--student {name!r}: no such student in stack {outputs.stack!r} "
                     f"(students: {', '.join(students)})")


def resolve_students(outputs, names: list[str] | None) -> tuple[str, ...] | None:
    return tuple(dict.fromkeys(resolve_student(outputs, n) for n in names)) if names else None


def cmd_plan(args: argparse.Namespace) -> int:
    from labs.program.config import DEFAULT_REGION
    from labs.provision.plan import as_json, make_plan, render

    plan = make_plan(config_values(args), stack=args.stack or DEFAULT_STACK, region=args.region or DEFAULT_REGION)
    print(json.dumps(as_json(plan), indent=2, default=str) if args.json else render(plan))
    return ExitStatus.OK


def cmd_roster(args: argparse.Namespace) -> int:
    """aws mode reads the class from Pulumi config: print it, with the students' keys, as `pulumi config set`."""
    import shlex

    from labs.program import config as lab_config
    from labs.provision.plan import PLACEHOLDERS

    values = config_values(argparse.Namespace(config=[], roster=args.file))
    lab_config.parse({**PLACEHOLDERS, **values})  # the program's own checks, exit 2 before anything is printed
    print(f"pulumi config set {lab_config.NAMESPACE}:students {shlex.quote(values['students'])}")
    if "studentKeys" in values:
        print(f"pulumi config set {lab_config.NAMESPACE}:studentKeys {shlex.quote(values['studentKeys'])}")
    else:
        print(f"# nobody brings their own key (if set before: pulumi config rm {lab_config.NAMESPACE}:studentKeys)")
    return ExitStatus.OK


def cmd_local_up(args: argparse.Namespace) -> int:
    from labs.cli import warm
    from labs.provision import local

    result = local.up(config_values(args), stack=args.stack or DEFAULT_STACK, region=args.region,
                      wait=args.wait, students=tuple(dict.fromkeys(args.student)) if args.student else None,
                      when_warm=functools.partial(warm.host_here, command=main))
    if args.json:
        print(result.outputs.to_json(), end="")
        return ExitStatus.OK
    from labs.report.tables import hosts_table

    verb = "already up" if result.already_up else f"up in {result.seconds:.1f} s"
    print(f"stack {result.outputs.stack!r} {verb}: lab cloud at {result.outputs.endpoint}")
    if result.already_up:
        print("\n".join([f"put back {len(result.put_back)} difference(s) in place:"]
                        + [f"  ~ {line}" for line in result.put_back]) if result.put_back
              else "nothing to change: the lab is as declared")
    print(hosts_table(result.outputs))
    print(f"\nTry: {try_line(result.outputs)}")
    return ExitStatus.OK


def try_line(outputs) -> str:
    """The first command to type after `local up`: exactly what works for this stack."""
    stack = "" if outputs.stack == DEFAULT_STACK else f" --stack {outputs.stack}"
    students = outputs.students()
    student = f" --student {students[0]}" if len(students) > 1 else ""
    return f"rolelab ssh with-role{student}{stack} -- aws iam list-users"


def cmd_local_preview(args: argparse.Namespace) -> int:
    from labs.provision import local

    planned = local.preview(config_values(args), stack=args.stack or local.DEFAULT_STACK,
                            students=tuple(dict.fromkeys(args.student)) if args.student else None)
    if args.json:
        print(json.dumps(planned.to_dict(), indent=2))
        return ExitStatus.OK
    lines = planned.describe()
    print("\n".join(lines) if lines else "no changes: the lab is as declared")
    count = planned.counts()
    print(f"{count['update']} to update in place, {count['create']} to create, {count['delete']} to delete, "
          f"{count['replace']} to replace")
    return ExitStatus.OK


def cmd_local_down(args: argparse.Namespace) -> int:
    from labs.provision import local

    stack = args.stack or DEFAULT_STACK
    summary = local.down(stack, wait=args.wait)
    if not summary.running and not summary.state_removed:
        print(f"stack {stack!r} is not up; nothing to do")
        return ExitStatus.OK
    print(f"stack {stack!r} down: {summary.describe()}" + ("; state removed" if summary.state_removed else ""))
    return ExitStatus.OK


def cmd_local_list(args: argparse.Namespace) -> int:
    from labs.provision import local

    listed = local.running_stacks()
    if args.json:
        print(json.dumps(listed, indent=2, default=str))
        return ExitStatus.OK
    if not listed:
        print("no local stacks")
    for info in listed:
        if info["state"] != "up":
            pids = ", ".join(str(p) for p in info.get("leftover_pids", []))
            print(f"{info['stack']:<16} {info['state']:<9} " + (f"PIDs {pids}: " if pids else "") + info.get("hint", ""))
            continue
        hosts = info.get("hosts", [])
        ready = sum(1 for h in hosts if h.get("state") == "ready")
        print(f"{info['stack']:<16} up        lab cloud pid {info.get('pid')} ({info['health']}), "
              f"{ready}/{len(hosts)} hosts ready" + (f", {info['region']}" if info.get("region") else ""))
        for host in hosts:
            print(f"  {host['instance_id']}  {host['state']:<8} ssh 127.0.0.1:{host['ssh_port']}")
    return ExitStatus.OK


def cmd_local_status(args: argparse.Namespace) -> int:
    from labs.provision import local

    info = local.status(args.stack or DEFAULT_STACK)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return ExitStatus.OK
    if info["state"] != "up":
        print(f"stack {info['stack']!r}: {info['state']}" + (f" — {info['hint']}" if info.get("hint") else ""))
        return ExitStatus.OK
    from labs.report.tables import table

    print(f"stack {info['stack']!r}: up\n  lab cloud pid  {info['pid']}\n  endpoint       {info['endpoint']}\n"
          f"  operator creds {info['operator_credentials']}\n  state dir      {info['state_dir']}\n")
    rows = [[h["student"], h["host"], h["instance_id"], f"127.0.0.1:{h['ssh_port']}", h["state"], h["sshd"],
             h["imds"]] for h in info["hosts"]]
    print(table(sorted(rows), ["student", "host", "instance", "ssh", "state", "sshd", "imds"]))
    return ExitStatus.OK


def cmd_outputs(args: argparse.Namespace) -> int:
    outputs = resolve_outputs(args)
    if args.json:
        print(outputs.to_json(), end="")
    else:
        from labs.report.tables import hosts_table

        print(f"stack {outputs.stack!r} ({outputs.mode}, {outputs.region})")
        print(hosts_table(outputs))
    return ExitStatus.OK


def cmd_ssh(args: argparse.Namespace) -> int:
    import os

    from labs.remote.openssh import openssh_argv, shell_line

    outputs = resolve_outputs(args)
    host = outputs.host(args.host, args.student and resolve_student(outputs, args.student))
    if outputs.mode == "local":
        from labs.remote.session import require_loopback_host

        require_loopback_host(host)  # safety: local mode never connects off loopback
    if not outputs.known_hosts:
        outputs = _pin_aws(outputs, host)
    remote = getattr(args, "remote", None) or None
    argv = openssh_argv(outputs, host, args.identity, remote)
    if args.print:
        print(shell_line(argv))
        return ExitStatus.OK
    os.execvp(argv[0], argv)
    return ExitStatus.OK  # not reached


def check_report_paths(args: argparse.Namespace) -> None:
    """--junit/--html are checked before any work: a run must not change the lab, then fail to write its report."""
    from pathlib import Path

    for flag in ("junit", "html"):
        value = getattr(args, flag, None)
        if not value:
            continue
        path = Path(value)
        directory = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise UsageError(f"--{flag} {value}: is a directory; name a file, e.g. --{flag} {path / 'report'}")
        if not directory.is_dir():
            raise UsageError(f"--{flag} {value}: directory {directory} does not exist; create it or name another file")
        if not os.access(directory, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise UsageError(f"--{flag} {value}: not writable; name a file in a directory you can write to")


def _emit(report, args: argparse.Namespace) -> int:
    """The report on stdout: JSON, the terminal view at a TTY, or plain text for logs and pipes."""
    from pathlib import Path

    from labs.report import render

    for kind in ("junit", "html"):
        if getattr(args, kind):
            Path(getattr(args, kind)).write_text(render(kind, report))
    if args.json:
        print(render("json", report))
    elif sys.stdout.isatty():
        from labs.report.console import make_console
        from labs.report.terminal import print_terminal

        print_terminal(report, make_console(sys.stdout), verbose=args.verbose > 0, events_told=not args.quiet)
    else:
        print(render("text", report))
    return int(report.exit_status)


def _progress(args: argparse.Namespace):
    from labs.report.progress import Progress

    return Progress(enabled=not args.quiet)


def _lab_run(args: argparse.Namespace, outputs):
    from labs.app.sequence import LabRun
    from labs.provision.operator import operator_clients

    return LabRun.open(outputs, operator_clients(outputs), _progress(args), identity=args.identity,
                       settle=args.settle, connect_budget=args.connect_budget)


def cmd_verify(args: argparse.Namespace) -> int:
    check_report_paths(args)
    outputs = resolve_outputs(args)
    students = resolve_students(outputs, args.student)
    with _lab_run(args, outputs) as run:
        run.verify(students)
    return _emit(run.finish(), args)


def cmd_drill(args: argparse.Namespace) -> int:
    check_report_paths(args)
    from labs.lesson.drills import DRILLS

    outputs = resolve_outputs(args)
    if DRILLS[args.name].real_key and outputs.mode != "local" and not args.i_understand:
        raise UsageError("bad-practice writes a real access key onto an instance; it runs in local mode, "
                         "or in aws mode only with --i-understand (the key and user are deleted afterwards)")
    students = resolve_students(outputs, args.student) or outputs.students()
    with _lab_run(args, outputs) as run, _drill_lock(outputs, args.name):
        run.drill((args.name,), students)
    return _emit(run.finish(), args)


def _drill_lock(outputs, name: str):
    """Local mode: a drill changes the stack's lab, so no other drill, up or down may run on it meanwhile."""
    from contextlib import nullcontext

    if outputs.mode != "local":
        return nullcontext()
    from labs.provision import local

    return local.lock(outputs.stack, f"running drill {name}")


def _slugs(names: list[str] | None) -> tuple[str, ...] | None:
    """--student for a class not made yet (the demo's): roster names become the slugs the class will use."""
    from labs.program.roster import sanitize

    return tuple(dict.fromkeys(sanitize(n) for n in names)) if names else None


def cmd_e2e(args: argparse.Namespace) -> int:
    check_report_paths(args)
    from labs.app.e2e import run_e2e

    result = run_e2e(args.stack, args.identity, _progress(args), settle=args.settle,
                     connect_budget=args.connect_budget)
    if result.report is not None:
        _emit(result.report, args)
    for step in result.steps:
        print(f"e2e: {step}", file=sys.stderr)
    return int(result.status)


def cmd_preflight(args: argparse.Namespace) -> int:
    from labs.app import preflight

    overrides = config_values(args)
    if args.local:
        from labs.provision import local

        local.local_environment()
        report = preflight.for_local(args.stack or local.DEFAULT_STACK, overrides)
    else:
        report = preflight.for_stack(args.stack, overrides)
    print(report.render())
    return int(report.exit_status)


def cmd_demo(args: argparse.Namespace) -> int:
    check_report_paths(args)
    from labs.app.demo import DEMO_STACK, run_demo
    from labs.program.config import DEFAULT_REGION
    from labs.provision.local import local_environment

    local_environment()
    if args.exercise:
        from labs.app.exercise_demo import run_exercise_demo

        return _emit(run_exercise_demo(config_values(args), args.stack or "demo-exercise",
                                       args.region or DEFAULT_REGION, _progress(args)), args)
    report, _, timings = run_demo(config_values(args), stack=args.stack or DEMO_STACK,
                                  region=args.region or DEFAULT_REGION, progress=_progress(args),
                                  settle=args.settle, step=args.step,
                                  students=_slugs(args.student))
    print(f"timings: up {timings.up:.1f} s, verify {timings.verify:.1f} s, drills {timings.drills:.1f} s, "
          f"down {timings.down:.1f} s", file=sys.stderr)
    return _emit(report, args)  # the summary is the last thing a person reads


def _student_console(args: argparse.Namespace):
    from labs.labcloud.paths import StackPaths
    from labs.provision.consoles import read_console

    outputs = resolve_outputs(args)
    if outputs.mode != "local":
        raise UsageError("in aws mode your own AWS credentials are the console (aws configure, AWS_PROFILE or "
                         "aws sso login); `rolelab env` is for the offline lab: add --local")
    return read_console(StackPaths.for_stack(outputs.stack).root, outputs, args.student)


def cmd_env(args: argparse.Namespace) -> int:
    import shlex

    console = _student_console(args)
    print(f"# the lab console of {console.student} (IAM user {console.user}); use: eval \"$(rolelab env ...)\"")
    print("unset AWS_SESSION_TOKEN AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE")
    for name, value in console.environment().items():
        print(f"export {name}={shlex.quote(value)}")
    return ExitStatus.OK


def cmd_console(args: argparse.Namespace) -> int:
    console = _student_console(args)
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")}
    env.update(console.environment(), PS1=f"(lab console: {console.student}) \\w $ ")
    shell = "/bin/bash" if os.path.exists("/bin/bash") else os.environ.get("SHELL", "/bin/sh")
    print(f"lab console of {console.student}: the aws CLI now acts as {console.user} on the lab cloud; "
          "`exit` to leave", file=sys.stderr)
    os.execvpe(shell, [shell, "--norc", "-i"] if shell.endswith("bash") else [shell, "-i"], env)
    return ExitStatus.OK  # not reached


def cmd_check(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from labs.app.check import check_students
    from labs.provision.operator import operator_clients
    from labs.report import exercise as views
    from labs.verify.runner import Verifier

    if args.watch is not None and not (1 <= args.watch <= 3600):
        raise UsageError(f"--watch {args.watch:g}: give the seconds between checks, 1 to 3600")
    outputs = resolve_outputs(args)
    students = resolve_students(outputs, args.student) or outputs.students()
    painted = sys.stdout.isatty() and args.watch is not None and not args.json
    with Verifier(outputs, identity=args.identity, settle=0.0, operator=operator_clients(outputs)) as verifier:
        while True:
            graded = check_students(verifier.operator, verifier, outputs, students)
            if args.html:
                Path(args.html).write_text(views.render_html(graded, outputs.stack, refresh=args.watch))
            text = views.render_json(graded) if args.json else views.render_text(graded, outputs.stack)
            print(("\033[H\033[2J" if painted else "") + text, flush=True)
            finished = all(p.complete for p in graded)
            if args.watch is None or finished:
                break
            try:
                time.sleep(args.watch)
            except KeyboardInterrupt:
                break
    if any(p.unreachable for p in graded):
        return ExitStatus.UNREACHABLE
    return ExitStatus.OK if all(p.complete for p in graded) else ExitStatus.LAB_WRONG


def _pin_aws(outputs, host):
    """aws mode: pin the host key the outputs carry (cross-checked with the console), or for outputs without
    one the keys from the console output; never trust on first use. Written where OpenSSH reads it."""
    from dataclasses import replace

    from labs.provision.operator import operator_clients
    from labs.remote.hostkeys import console_reader, pinned_for_aws

    keys = pinned_for_aws(host, console_reader(operator_clients(outputs)("ec2")))
    path = logs.rolelab_home() / "known_hosts" / outputs.stack
    path.parent.mkdir(parents=True, exist_ok=True)
    keys.save(str(path))
    return replace(outputs, known_hosts=str(path))


def aws_error(error: Exception) -> RolelabError:
    """An AWS error nothing handled: no answer is infrastructure (3), no credentials is input (2), and an answer
    (ClientError) is the account refusing something rolelab needed (3, with its code and message)."""
    if isinstance(error, NoCredentialsError):
        return UsageError(NO_CREDENTIALS_FIX)
    if isinstance(error, ClientError):
        code, message = api_error(error)
        return InfraError(f"the AWS API refused {error.operation_name}: {code}: {message}; "
                          "check the credentials' permissions and the region")
    if isinstance(error, ENDPOINT_ERRORS):
        return endpoint_error("AWS API", error)
    raise error


def main(argv: Sequence[str] | None = None, served_for: int | None = None) -> int:
    """served_for: the PID of the `rolelab` process whose command a warm host runs here (labs.cli.warm)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse mishandles `--` under subcommands; split it off ourselves (ssh's remote command).
    remote = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    logs.rolelab_home()  # a relative ROLELAB_HOME becomes absolute here, once, before any process starts
    try:
        with stop_signals_interrupt():  # SIGTERM/SIGHUP: the same cleanup as Ctrl-C, `finally` blocks run
            args = parser.parse_args(argv)
            args.remote = remote
            logs.setup(verbose=args.verbose > 1)
            if served_for:
                logging.getLogger("rolelab.warm").info("warm host: PID %s runs `rolelab %s` for PID %s",
                                                       os.getpid(), " ".join(argv), served_for)
            func: Callable[[argparse.Namespace], int] = args.func
            return int(func(args))
    except RolelabError as error:
        logging.getLogger("rolelab").debug("error", exc_info=True)
        print(f"rolelab: error: {error}", file=sys.stderr)
        return int(error.exit_status)
    except SystemExit as done:  # --help, --version
        return int(done.code or 0)
    except (*ENDPOINT_ERRORS, NoCredentialsError, ClientError) as error:  # last resort: an AWS answer, or none
        logging.getLogger("rolelab").debug("AWS error", exc_info=True)
        mapped = aws_error(error)
        print(f"rolelab: error: {mapped}", file=sys.stderr)
        return int(mapped.exit_status)
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        print(f"rolelab: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return {signal.SIGTERM: ExitStatus.TERMINATED, signal.SIGHUP: ExitStatus.HANGUP}.get(
            signum, ExitStatus.INTERRUPTED).value
    except Exception as error:  # noqa: BLE001 a bug: one line here, the traceback in the log
        logging.getLogger("rolelab").debug("error", exc_info=True)
        problem = logs.home_problem(error)
        if problem:  # a read-only, full or misplaced ROLELAB_HOME is the user's to fix
            print(f"rolelab: error: {problem}", file=sys.stderr)
            return int(ExitStatus.USAGE)
        logging.getLogger("rolelab").exception("internal error")
        details = f"details in {logs.kept_log()}" if logs.kept_log() else "run again with --verbose for details"
        print(f"rolelab: internal error: {error.__class__.__name__}: {error}; {details}", file=sys.stderr)
        return int(ExitStatus.INTERNAL)


def run() -> None:
    """The console script: main(), then leave without tearing down the interpreter (the
    modules a lab run loads take ~0.5 s to unload; every file and process is closed by now)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()

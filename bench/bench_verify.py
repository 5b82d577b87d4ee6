"""Issue 4: `rolelab verify --local` against two baselines doing the same checks, on one lab.

On ONE local lab (1 student, 2 hosts), per repeat, in a rotating order:
  verify     `rolelab verify --local --stack S -q --json` (CLI wall; the CLI process's CPU);
  openssh    a naive sequential loop of `ssh host 'command'` (labs.remote.openssh.openssh_argv), one per check;
  testinfra  pytest-testinfra's paramiko backend, sequential `host.run(cmd)`, in a fresh interpreter
             (like the CLI: interpreter start, imports, connect, run) and timed in-process too;
  in-proc    labs.verify.runner.Verifier in a fresh interpreter: its own CPU (RUSAGE_SELF,
             process_time) around Verifier.run, per check;
  floor      the checks' aws CLI commands run locally, each with its host's environment
             (`rolelab ssh HOST --local -- env`), CPU from RUSAGE_CHILDREN, divided by the cores.
Then the lab is taken down and `rolelab demo` is timed end to end.

The commands are exactly `check.command` of labs.lesson.suite.lab_checks(outputs); each
baseline's results are classified with the check's own `evaluate`, so a baseline that got
different answers would show in its "as expected" count.

    .venv/bin/python bench/bench_verify.py [--repeat N] [--demo-repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

STACK = "bench-verify"
TARGET_RATIO = 0.6
TARGET_CPU_PER_CHECK_MS = 30.0
TARGET_DEMO_S = 30.0


# -- child modes (fresh interpreters) ------------------------------------------------------

def child_testinfra(stack: str) -> None:
    """Sequential host.run() over testinfra's paramiko backend; prints JSON on stdout."""
    started = time.perf_counter()
    import paramiko
    import testinfra

    from labs.core.result import CommandResult
    from labs.lesson.suite import lab_checks

    imported = time.perf_counter()
    outputs = c.outputs(stack)
    checks = lab_checks(outputs)
    pinned = paramiko.HostKeys(outputs.known_hosts)
    # testinfra's paramiko backend never loads known_hosts and uses WarningPolicy (StrictHostKeyChecking
    # in ssh_config can only turn that into IgnorePolicy). Closest to pinning: an ssh_config that sets
    # nothing lax, and a check of the server's key against the pinned one before any command is sent.
    ssh_config = Path(os.environ["ROLELAB_HOME"]) / "testinfra_ssh_config"
    ssh_config.write_text("Host *\n  StrictHostKeyChecking yes\n")
    hosts = {}
    as_expected = 0
    for check in checks:
        h = check.host
        if h.label not in hosts:
            host = testinfra.get_host(f"paramiko://{h.user}@{h.address}:{h.port}",
                                      ssh_identity_file=outputs.private_key_path, ssh_config=str(ssh_config))
            offered = host.backend.client.get_transport().get_remote_server_key()  # connects
            name = f"[{h.address}]:{h.port}"
            if not pinned.check(name, offered):
                raise SystemExit(f"host key of {name} is not the pinned one; refusing to send commands")
            hosts[h.label] = host
        t0 = time.perf_counter()
        out = hosts[h.label].run(check.command)
        result = CommandResult(check.command, out.rc, out.stdout, out.stderr, time.perf_counter() - t0, h.label)
        as_expected += check.evaluate(result) == check.expected
    done = time.perf_counter()
    for host in hosts.values():
        host.backend.client.close()
    print(json.dumps({"checks": len(checks), "as_expected": as_expected, "import_s": imported - started,
                      "inner_wall": done - imported}))


def child_verifier(stack: str) -> None:
    """labs.verify.runner.Verifier in-process: this process's own CPU around the run; prints JSON."""
    import resource

    cpu0, started = c.self_cpu(), time.perf_counter()
    from labs.lesson.findings import Status
    from labs.lesson.suite import lab_checks
    from labs.provision.operator import operator_clients
    from labs.verify.runner import Verifier, default_workers

    cpu_import = c.self_cpu() - cpu0
    import_s = time.perf_counter() - started
    outputs = c.outputs(stack)
    checks = lab_checks(outputs)
    ru0, pt0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
    with Verifier(outputs, operator=operator_clients(outputs)) as verifier:
        results = verifier.run(checks)
    ru1, pt1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
    user, system = ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime
    print(json.dumps({"checks": len(checks), "passed": sum(r.status is Status.PASS for r in results),
                      "workers": default_workers(outputs, len(checks)),
                      "cpu_user": user, "cpu_sys": system, "cpu_run": user + system, "process_time": pt1 - pt0,
                      "wall_run": w1 - w0, "cpu_import": cpu_import, "import_s": import_s,
                      "cpu_per_check_ms": 1000 * (user + system) / len(checks),
                      "maxrss_mb": c.mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}))


# -- measurements --------------------------------------------------------------------------

def openssh_loop(stack: str) -> dict:
    from labs.core.result import CommandResult
    from labs.lesson.suite import lab_checks
    from labs.remote.openssh import openssh_argv

    outputs = c.outputs(stack)
    checks = lab_checks(outputs)
    started = time.perf_counter()
    as_expected = 0
    for check in checks:
        m = c.run_measured(openssh_argv(outputs, check.host, command=[check.command]))
        as_expected += check.evaluate(CommandResult(check.command, m.rc, m.stdout, m.stderr, m.wall)) == check.expected
    return {"wall": time.perf_counter() - started, "checks": len(checks), "as_expected": as_expected}


def child(mode: str, stack: str) -> c.Measured:
    m = c.run_measured([c.PYTHON, __file__, f"--_{mode}", stack])
    if m.rc != 0:
        raise RuntimeError(f"{mode} child exited {m.rc}: {m.stderr[-800:]}")
    return m


def testinfra_run(stack: str) -> dict:
    m = child("testinfra", stack)
    return {"wall": m.wall, "cpu": m.cpu, **json.loads(m.stdout.strip().splitlines()[-1])}


def verifier_run(stack: str) -> dict:
    m = child("verifier", stack)
    return {"process_wall": m.wall, "process_cpu": m.cpu, **json.loads(m.stdout.strip().splitlines()[-1])}


def channel_costs(stack: str, pids: tuple[int, list[int]], checks) -> dict:
    """Host-side CPU and wall of one channel, per kind of check, over one warm paramiko connection
    (the Verifier's HostSession): where verify's CPU beyond the aws CLI's goes."""
    import paramiko

    from labs.remote.session import HostSession

    outputs = c.outputs(stack)
    host = outputs.host("with-role")
    mine = {ch.id: ch for ch in checks if ch.host == host}
    kinds = [("empty channel (`true`)", "true", 30)]
    kinds += [(f"check {cid}", mine[cid].command, 10) for cid in ("imds-tokenless", "imds-credentials", "nothing-stored")
              if cid in mine]
    kinds += [(f"check {cid}", mine[cid].command, 5) for cid in ("iam-list-users", "sts-caller-identity") if cid in mine]
    result = {}
    with HostSession(host, paramiko.HostKeys(outputs.known_hosts), outputs.private_key_path, local_only=True) as session:
        session.run("true")
        for name, command, times in kinds:
            cpu0, started = c.self_cpu(), time.perf_counter()
            with c.CpuBudget(pids[0], pids[1]) as budget:
                for _ in range(times):
                    session.run(command)
                wall = time.perf_counter() - started
                own = c.self_cpu() - cpu0
            result[name] = {"wall": wall / times, "host_cpu": budget.hosts / times, "cloud_cpu": budget.cloud / times,
                            "client_cpu": own / times, "times": times}
    return result


def demo_run(i: int) -> dict:
    stack = f"bench-demo-{i}"
    try:
        m = c.rolelab("demo", "--stack", stack, "-q", "--json", check=False)
    finally:
        c.down(stack)  # the demo takes itself down; this only matters if it crashed
    found = re.search(r"timings: up ([\d.]+) s, verify ([\d.]+) s, drills ([\d.]+) s, down ([\d.]+) s", m.stderr)
    parts = dict(zip(("up", "verify", "drills", "down"), map(float, found.groups()), strict=True)) if found else {}
    return {"wall": m.wall, "rc": m.rc, "cpu": m.cpu, **parts, "load": c.loadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--demo-repeat", type=int, default=3)
    parser.add_argument("--_testinfra", metavar="STACK", help=argparse.SUPPRESS)
    parser.add_argument("--_verifier", metavar="STACK", help=argparse.SUPPRESS)
    args = parser.parse_args()
    c.isolate("bench-verify")
    if args._testinfra:
        child_testinfra(args._testinfra)
        return 0
    if args._verifier:
        child_verifier(args._verifier)
        return 0

    from labs.lesson.suite import lab_checks

    info = c.header("bench_verify (issue 4): verify vs OpenSSH loop vs testinfra, CPU per check, demo, floor",
                    args.repeat)
    runs: list[dict] = []
    with c.stack_up(STACK, 1) as up:
        outputs = c.outputs(STACK)
        checks = lab_checks(outputs)
        aws_runs = c.aws_runs(outputs, checks)
        print(f"   lab up in {up['up'].wall:.1f} s: {len(outputs.hosts)} hosts, {len(checks)} checks, "
              f"{len(aws_runs)} of them aws CLI runs", flush=True)
        pids = c.lab_pids(STACK)
        steps = {"verify": lambda s: c.verify_cli(s, *pids), "openssh": openssh_loop, "testinfra": testinfra_run,
                 "inproc": verifier_run, "floor": lambda s: c.aws_floor(aws_runs)}
        order = list(steps)
        for i in range(args.repeat):
            run: dict = {"load_before": c.loadavg()}
            for name in order[i % len(order):] + order[:i % len(order)]:  # rotate: no step always first
                run[name] = steps[name](STACK)
            run["load_after"] = c.loadavg()
            runs.append(run)
            print(f"   run {i + 1}/{args.repeat}: verify {run['verify']['wall']:.2f} s, openssh "
                  f"{run['openssh']['wall']:.2f} s, testinfra {run['testinfra']['wall']:.2f} s, floor "
                  f"{run['floor']['floor_wall']:.2f} s, load {run['load_after'][0]}", flush=True)
        costs = channel_costs(STACK, pids, checks)
    demos = []
    for i in range(args.demo_repeat):
        demos.append(demo_run(i))
        print(f"   demo {i + 1}/{args.demo_repeat}: {demos[-1]['wall']:.1f} s (exit {demos[-1]['rc']})", flush=True)

    col = lambda step, key: [r[step][key] for r in runs]  # noqa: E731
    med = lambda step, key: c.median(col(step, key))  # noqa: E731
    figures = []
    n = len(checks)
    print(f"\n-- one student: {len(outputs.hosts)} hosts, {n} checks ({len(aws_runs)} aws CLI runs)")
    figures.append(c.line("rolelab verify --local, CLI wall", med("verify", "wall"), "s", runs=col("verify", "wall"),
                          note=f"{c.median(col('verify', 'passed')):.0f}/{n} pass"))
    figures.append(c.line("baseline a: sequential OpenSSH loop, wall", med("openssh", "wall"), "s",
                          runs=col("openssh", "wall"), note=f"{c.median(col('openssh', 'as_expected')):.0f}/{n} as expected"))
    figures.append(c.line("baseline b: testinfra paramiko, fresh process, wall", med("testinfra", "wall"), "s",
                          runs=col("testinfra", "wall"),
                          note=f"{c.median(col('testinfra', 'as_expected')):.0f}/{n} as expected"))
    figures.append(c.line("  testinfra after imports (connect + runs), wall", med("testinfra", "inner_wall"), "s",
                          runs=col("testinfra", "inner_wall")))
    figures.append(c.line("  Verifier.run in-process (connect + runs), wall", med("inproc", "wall_run"), "s",
                          runs=col("inproc", "wall_run")))
    print("\n-- ratios (target <= 0.6 each)")
    ratio_a = [r["verify"]["wall"] / r["openssh"]["wall"] for r in runs]
    ratio_b = [r["verify"]["wall"] / r["testinfra"]["wall"] for r in runs]
    ratio_b_in = [r["inproc"]["wall_run"] / r["testinfra"]["inner_wall"] for r in runs]
    figures.append(c.line("verify CLI / OpenSSH loop", c.median(ratio_a), "x", TARGET_RATIO, ratio_a))
    figures.append(c.line("verify CLI / testinfra (fresh process)", c.median(ratio_b), "x", TARGET_RATIO, ratio_b))
    figures.append(c.line("Verifier.run / testinfra, both in-process after imports", c.median(ratio_b_in), "x",
                          TARGET_RATIO, ratio_b_in, "info: without interpreter start"))
    print("\n-- verify's own CPU")
    per_check = col("inproc", "cpu_per_check_ms")
    figures.append(c.line("Verifier.run CPU per check (RUSAGE_SELF)", c.median(per_check), "ms",
                          TARGET_CPU_PER_CHECK_MS, per_check))
    pt = [r["inproc"]["process_time"] * 1000 / n for r in runs]
    figures.append(c.line("Verifier.run process_time per check", c.median(pt), "ms", TARGET_CPU_PER_CHECK_MS, pt))
    cli = [r["verify"]["cli_cpu"] * 1000 / n for r in runs]
    figures.append(c.line("whole CLI process CPU per check (incl. start, imports)", c.median(cli), "ms", runs=cli))
    figures.append(c.line("imports of the in-process child, CPU", c.median(col("inproc", "cpu_import")), "s",
                          runs=col("inproc", "cpu_import")))
    figures.append(c.line("verify: hosts' CPU (sshd sessions, bash, aws CLI)", med("verify", "hosts_cpu"), "s",
                          runs=col("verify", "hosts_cpu")))
    figures.append(c.line("verify: lab cloud's CPU (moto, IMDS)", med("verify", "cloud_cpu"), "s",
                          runs=col("verify", "cloud_cpu")))
    figures.append(c.line("verify: report's own duration (after start-up)", med("verify", "report_seconds"), "s",
                          runs=col("verify", "report_seconds")))
    figures.append(c.line("verify CLI peak RSS", med("verify", "verifier_maxrss_mb"), "MB", runs=col("verify", "verifier_maxrss_mb")))
    print("\n-- floor: the same aws CLI runs, locally, CPU / cores")
    figures.append(c.line("aws CLI CPU per run (user+sys)", med("floor", "cpu_per_run"), "s",
                          runs=col("floor", "cpu_per_run")))
    figures.append(c.line(f"floor = sum CPU / {c.CORES} cores", med("floor", "floor_wall"), "s",
                          runs=col("floor", "floor_wall")))
    multiple = [r["verify"]["wall"] / r["floor"]["floor_wall"] for r in runs]
    figures.append(c.line("verify CLI wall / floor", c.median(multiple), "x", runs=multiple))
    cpu_multiple = [(r["verify"]["hosts_cpu"] + r["verify"]["cloud_cpu"] + r["verify"]["cli_cpu"]) / r["floor"]["cpu"]
                    for r in runs]
    figures.append(c.line("verify CPU (hosts + lab cloud + CLI) / aws CLI CPU", c.median(cpu_multiple), "x",
                          runs=cpu_multiple, note="load-independent"))
    batch = [r["verify"]["wall"] / r["floor"]["batch_wall"] for r in runs]
    figures.append(c.line("verify CLI wall / floor batch wall (same load)", c.median(batch), "x", runs=batch))
    multiple_in = [r["inproc"]["wall_run"] / r["floor"]["floor_wall"] for r in runs]
    figures.append(c.line("Verifier.run wall / floor", c.median(multiple_in), "x", runs=multiple_in))
    print("\n-- one channel over a warm connection (the Verifier's HostSession), per kind of check (with-role host)")
    for name, v in costs.items():
        note = (f"host CPU {1000 * v['host_cpu']:.0f} ms, lab cloud CPU {1000 * v['cloud_cpu']:.0f} ms, "
                f"our CPU {1000 * v['client_cpu']:.1f} ms")
        figures.append(c.line(f"{name}: wall", v["wall"], "s", note=note))
    print("\n-- rolelab demo, end to end")
    walls = [d["wall"] for d in demos]
    figures.append(c.line("rolelab demo wall", c.median(walls), "s", TARGET_DEMO_S, walls,
                          f"exit codes {sorted({d['rc'] for d in demos})}"))
    for part in ("up", "verify", "drills", "down"):
        values = [d.get(part) for d in demos]
        figures.append(c.line(f"  demo {part}", c.median(values), "s", runs=values))
    print(f"\n   load at end {c.loadavg()}")
    c.write_json("bench_verify", {"machine": info, "load_end": c.loadavg(), "repeat": args.repeat,
                                  "checks": [{"host": ch.host.label, "id": ch.id, "command": ch.command}
                                             for ch in checks],
                                  "figures": figures, "runs": runs, "demos": demos,
                                  "channel_costs": costs})
    return 0


if __name__ == "__main__":
    sys.exit(main())

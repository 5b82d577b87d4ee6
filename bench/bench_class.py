"""Issue 5: local classes of 1, 5, 10 and 20 students: up, verify, peak memory, and the verify floor.

Per repeat and class size, in the same run:
  up       `rolelab local up --config students=N` (CLI wall, UpResult.seconds), then `local down`;
  verify   `rolelab verify --local` (wall; CPU of the CLI process from wait4; the CPU the lab cloud
           and every sshd's process tree spent, from /proc); nothing samples meanwhile;
  floor    the same aws CLI commands (every aws check of that verify), run locally with each host's
           environment, CPU of those children (RUSAGE_CHILDREN) divided by the cores;
  memory   a second, untimed verify while a sampler adds up the memory of the lab cloud, every sshd
           with all it forks (sessions, bash, aws CLI) and the verifier (peak RSS and PSS sums);
  what-if  optional (--what-if 3,4): the Verifier in a fresh process with pool size N (bench-only;
           no production change).
verify and floor alternate which goes first.

    .venv/bin/python bench/bench_class.py [--repeat N] [--sizes 1,5,10,20] [--what-if 3,4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

TARGET_FLOOR_MULTIPLE = 1.25  # verify wall / floor, 10 students
TARGET_UP_10 = 15.0  # s
DEFAULT_SIZES = "1,5,10,20"


def memory_measured(stack: str, cloud_pid: int, sshd_pids: list[int]) -> dict:
    """A second, untimed verify with the memory sampler: the lab cloud (its own process: its children
    are the sshds), every sshd with all it forks (sessions, bash, aws CLI), the verifier."""
    verifier: list[int] = []
    groups = {"cloud": (lambda: [cloud_pid], False), "hosts": (lambda: list(sshd_pids), True),
              "verifier": (lambda: list(verifier), True)}
    with c.MemorySampler(groups) as sampler:
        m = c.rolelab("verify", "--local", "--stack", stack, "-q", "--json", check=False, on_start=verifier.append)
    return {"wall": m.wall, "rc": m.rc, "verifier_maxrss_mb": c.mb(m.maxrss_kb), **sampler.result()}


def floor_measured(stack: str, aws_runs: list, cloud_pid: int) -> dict:
    with c.CpuBudget(cloud_pid, []) as budget:
        floor = c.aws_floor(aws_runs)
    return {**floor, "cloud_cpu": budget.cloud}


WHAT_IF = """
import json, sys, time
sys.path.insert(0, sys.argv[3])
import _common as c
from labs.provision.operator import operator_clients
from labs.lesson.findings import Status
from labs.verify.runner import Verifier
from labs.lesson.suite import lab_checks
outputs = c.outputs(sys.argv[1])
started = time.perf_counter()
with Verifier(outputs, workers=int(sys.argv[2]), operator=operator_clients(outputs)) as verifier:
    results = verifier.run(lab_checks(outputs))
print(json.dumps({"run_wall": time.perf_counter() - started, "passed": sum(r.status is Status.PASS for r in results)}))
"""


def what_if_run(stack: str, variant: str) -> dict:
    """What-if (no production change): the Verifier in a fresh process with another pool size ("4")."""
    m = c.run_measured([c.PYTHON, "-c", WHAT_IF, stack, variant, str(c.BENCH)])
    return {"variant": variant, "wall": m.wall, "rc": m.rc, **(json.loads(m.stdout) if m.rc == 0 else {})}


def one_size(students: int, i: int, floor_first: bool, what_if: list[str]) -> dict:
    from labs.lesson.suite import lab_checks

    stack = f"bench-class{students}-{i}"
    row: dict = {"students": students, "load_before": c.loadavg()}
    with c.stack_up(stack, students) as up:
        cloud_pid, sshd_pids = c.lab_pids(stack)
        outputs = c.outputs(stack)
        checks = lab_checks(outputs)
        aws_runs = c.aws_runs(outputs, checks)
        row.update(hosts=len(outputs.hosts), checks=len(checks), aws_runs=len(aws_runs), up_wall=up["up"].wall,
                   up_seconds=up["up_seconds"], cloud_rss_idle_mb=c.mb(c.rss_kb(cloud_pid)))
        steps = [("floor", lambda: floor_measured(stack, aws_runs, cloud_pid)),
                 ("verify", lambda: c.verify_cli(stack, cloud_pid, sshd_pids))]
        for name, step in (steps if floor_first else steps[::-1]):
            row[name] = step()
        row["memory"] = memory_measured(stack, cloud_pid, sshd_pids)
        row["what_if"] = [what_if_run(stack, w) for w in what_if]
        row["cloud_rss_after_mb"] = c.mb(c.rss_kb(cloud_pid))
        row["cloud_hwm_mb"] = c.mb(c.hwm_kb(cloud_pid))
    row["down_wall"] = up["down"].wall if up.get("down") else None
    row["load_after"] = c.loadavg()
    row["multiple"] = row["verify"]["wall"] / row["floor"]["floor_wall"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="class sizes; other than the default, the JSON is "
                        "bench/out/bench_class-SIZES.json")
    parser.add_argument("--what-if", default="", metavar="3,4",
                        help="also run the Verifier in a fresh process with these pool sizes (default pool: cores + 1)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    what_if = [w for w in args.what_if.split(",") if w]
    c.isolate("bench-class")
    info = c.header(f"bench_class (issue 5): classes of {args.sizes} students", args.repeat)
    rows: dict[int, list[dict]] = {n: [] for n in sizes}
    for i in range(args.repeat):
        for n in sizes:
            row = one_size(n, i, floor_first=(i % 2 == 0), what_if=what_if)
            rows[n].append(row)
            print(f"   run {i + 1}/{args.repeat} {n:>3} students: up {row['up_wall']:.1f} s, verify "
                  f"{row['verify']['wall']:.1f} s ({row['verify']['passed']}/{row['verify']['checks']} pass), floor "
                  f"{row['floor']['floor_wall']:.1f} s, x{row['multiple']:.2f}, load {row['load_after'][0]}",
                  flush=True)

    med = lambda n, f: c.median(f(r) for r in rows[n])  # noqa: E731
    table = []
    print("\n-- scaling (medians)")
    head = (f"  {'students':>8} {'hosts':>5} {'checks':>6} {'aws':>4} {'up s':>6} {'upRes':>6} {'verify s':>8} "
            f"{'floor s':>7} {'v/floor':>7} {'cloud+host CPU':>14} {'peak PSS MB':>11} {'peak RSS MB':>11} "
            f"{'verifier MB':>11} {'down s':>6}")
    print(head)
    for n in sizes:
        r = {
            "students": n, "hosts": rows[n][0]["hosts"], "checks": rows[n][0]["checks"], "aws_runs": rows[n][0]["aws_runs"],
            "up_wall": med(n, lambda x: x["up_wall"]), "up_seconds": med(n, lambda x: x["up_seconds"]),
            "verify_wall": med(n, lambda x: x["verify"]["wall"]), "floor": med(n, lambda x: x["floor"]["floor_wall"]),
            "multiple": med(n, lambda x: x["multiple"]),
            "cloud_cpu": med(n, lambda x: x["verify"]["cloud_cpu"]), "hosts_cpu": med(n, lambda x: x["verify"]["hosts_cpu"]),
            "verifier_cpu": med(n, lambda x: x["verify"]["cli_cpu"]),
            "aws_cpu": med(n, lambda x: x["floor"]["cpu"]),
            "floor_cloud_cpu": med(n, lambda x: x["floor"]["cloud_cpu"]),
            "peak_pss_mb": med(n, lambda x: x["memory"]["peak_total_pss_mb"]),
            "peak_rss_mb": med(n, lambda x: x["memory"]["peak_total_rss_mb"]),
            "peak_cloud_rss_mb": med(n, lambda x: x["memory"]["peak_rss_mb"]["cloud"]),
            "peak_cloud_pss_mb": med(n, lambda x: x["memory"]["peak_pss_mb"]["cloud"]),
            "peak_hosts_pss_mb": med(n, lambda x: x["memory"]["peak_pss_mb"]["hosts"]),
            "peak_hosts_rss_mb": med(n, lambda x: x["memory"]["peak_rss_mb"]["hosts"]),
            "peak_verifier_pss_mb": med(n, lambda x: x["memory"]["peak_pss_mb"]["verifier"]),
            "sampler_cpu_s": med(n, lambda x: x["memory"]["sampler_cpu_s"]),
            "verifier_maxrss_mb": med(n, lambda x: x["verify"]["verifier_maxrss_mb"]),
            "down_wall": med(n, lambda x: x["down_wall"]),
            "passed": med(n, lambda x: x["verify"]["passed"]),
            "runs": {"up_wall": [x["up_wall"] for x in rows[n]], "verify_wall": [x["verify"]["wall"] for x in rows[n]],
                     "floor": [x["floor"]["floor_wall"] for x in rows[n]], "multiple": [x["multiple"] for x in rows[n]]},
        }
        table.append(r)
        print(f"  {n:>8} {r['hosts']:>5} {r['checks']:>6} {r['aws_runs']:>4} {r['up_wall']:>6.2f} {r['up_seconds']:>6.1f} "
              f"{r['verify_wall']:>8.2f} {r['floor']:>7.2f} {r['multiple']:>7.2f} "
              f"{r['cloud_cpu']:>6.1f}+{r['hosts_cpu']:<7.1f} {r['peak_pss_mb']:>11.0f} {r['peak_rss_mb']:>11.0f} "
              f"{r['verifier_maxrss_mb']:>11.0f} {r['down_wall']:>6.2f}")

    print("\n-- peak memory during verify (a second, untimed verify with the sampler; MB, medians)")
    print(f"  {'students':>8} {'cloud RSS':>9} {'cloud PSS':>9} {'hosts RSS':>9} {'hosts PSS':>9} "
          f"{'verifier RSS':>12} {'total RSS':>9} {'total PSS':>9} {'sampler CPU s':>13}")
    for r in table:
        print(f"  {r['students']:>8} {r['peak_cloud_rss_mb']:>9.0f} {r['peak_cloud_pss_mb']:>9.0f} "
              f"{r['peak_hosts_rss_mb']:>9.0f} {r['peak_hosts_pss_mb']:>9.0f} {r['verifier_maxrss_mb']:>12.0f} "
              f"{r['peak_rss_mb']:>9.0f} {r['peak_pss_mb']:>9.0f} {r['sampler_cpu_s']:>13.2f}")
    print("  (hosts = every sshd and all it forks: sessions, bash, the aws CLI runs; RSS sums count shared pages\n"
          "   once per process, PSS splits them; both sampled every 0.2 s)")

    print("\n-- CPU budget of one verify (medians, seconds of CPU): where the wall time goes")
    print(f"  {'students':>8} {'aws CLI (floor)':>15} {'hosts total':>11} {'lab cloud':>9} {'verifier':>8} "
          f"{'sum/cores':>9} {'CPU multiple':>12} {'verify wall':>11} {'busy':>5} {'floor batch wall':>16} "
          f"{'v/batch':>7}")
    for r in table:
        total = r["hosts_cpu"] + r["cloud_cpu"] + r["verifier_cpu"]
        r["cpu_sum_per_core"] = total / c.CORES
        r["cpu_multiple"] = total / r["aws_cpu"]  # verify's CPU / the aws CLI's: what an idle machine would show
        n = r["students"]
        r["floor_batch_wall"] = med(n, lambda x: x["floor"]["batch_wall"])
        r["multiple_vs_batch"] = med(n, lambda x: x["verify"]["wall"] / x["floor"]["batch_wall"])
        print(f"  {n:>8} {r['aws_cpu']:>15.1f} {r['hosts_cpu']:>11.1f} {r['cloud_cpu']:>9.1f} "
              f"{r['verifier_cpu']:>8.2f} {total / c.CORES:>9.1f} {r['cpu_multiple']:>12.2f} {r['verify_wall']:>11.1f} "
              f"{100 * total / c.CORES / r['verify_wall']:>4.0f}% {r['floor_batch_wall']:>16.1f} "
              f"{r['multiple_vs_batch']:>7.2f}")
    print("  (CPU multiple = (hosts + lab cloud + verifier CPU) / aws CLI CPU; busy = sum/cores / verify wall;\n"
          "   floor batch wall = the local aws runs' own wall on 2 workers, under the same load as verify)")

    figures_what_if = []
    if what_if:
        print("\n-- what-if (bench-only, no production change): Verifier in a fresh process; N = pool size")
        for n in sizes:
            for k, w in enumerate(what_if):
                walls = [x["what_if"][k]["wall"] for x in rows[n]]
                ratios = [x["what_if"][k]["wall"] / x["floor"]["floor_wall"] for x in rows[n]]
                figures_what_if.append(c.line(f"{n} students, what-if {w}: wall / floor", c.median(ratios), "x",
                                              runs=ratios, note=f"wall {c.median(walls):.2f} s"))

    figures = []
    print("\n-- targets")
    if 10 in rows:
        t10 = next(r for r in table if r["students"] == 10)
        figures.append(c.line("10 students: verify wall / floor", t10["multiple"], "x", TARGET_FLOOR_MULTIPLE,
                              t10["runs"]["multiple"]))
        figures.append(c.line("10 students: local up, CLI wall", t10["up_wall"], "s", TARGET_UP_10,
                              t10["runs"]["up_wall"]))
        figures.append(c.line("10 students: local up, UpResult.seconds", t10["up_seconds"], "s", TARGET_UP_10,
                              [x["up_seconds"] for x in rows[10]]))
    for r in table:
        if r["students"] != 10:
            figures.append(c.line(f"{r['students']} students: verify wall / floor", r["multiple"], "x",
                                  runs=r["runs"]["multiple"]))
    if len(table) >= 2:
        a, b = table[0], table[-1]
        slope_cpu = (b["verifier_cpu"] - a["verifier_cpu"]) / (b["checks"] - a["checks"])
        slope_cloud = (b["cloud_cpu"] - a["cloud_cpu"]) / (b["aws_runs"] - a["aws_runs"])
        slope_host = (b["hosts_cpu"] - a["hosts_cpu"]) / (b["checks"] - a["checks"])
        slope_up = (b["up_wall"] - a["up_wall"]) / (b["hosts"] - a["hosts"])
        slope_mem = (b["peak_pss_mb"] - a["peak_pss_mb"]) / (b["hosts"] - a["hosts"])
        print("\n-- marginal costs (largest minus smallest class)")
        figures.append(c.line("verifier CPU per extra check", 1000 * slope_cpu, "ms"))
        figures.append(c.line("lab cloud CPU per extra aws CLI run", 1000 * slope_cloud, "ms"))
        figures.append(c.line("host-side CPU per extra check (sshd+bash+aws)", 1000 * slope_host, "ms"))
        figures.append(c.line("local up per extra host", slope_up, "s"))
        figures.append(c.line("peak PSS per extra host (during verify)", slope_mem, "MB"))
    print(f"\n   load at end {c.loadavg()}")
    name = "bench_class" if args.sizes == DEFAULT_SIZES else f"bench_class-{args.sizes.replace(',', '_')}"
    c.write_json(name, {"machine": info, "load_end": c.loadavg(), "repeat": args.repeat, "sizes": sizes,
                                 "table": table, "figures": figures, "what_if": figures_what_if,
                                 "rows": {str(n): rs for n, rs in rows.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())

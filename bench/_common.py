"""Shared helpers for the bench scripts: an isolated ROLELAB_HOME, timed child processes,
/proc memory readings, medians, PASS/MISS lines and the JSON written under bench/out/.

Benchmarks print figures and ratios against a baseline measured in the same run; they
never assert. Every stack a script brings up is taken down again in a `finally`.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
OUT = BENCH / "out"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
ROLELAB = str(VENV_BIN / "rolelab")
CORES = os.cpu_count() or 1

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from labs.labcloud.paths import StackPaths  # noqa: E402 (after the path is set)
from labs.labcloud.procs import descendants, process_tree  # noqa: E402

# -- environment ------------------------------------------------------------------------

def isolate(prefix: str) -> Path:
    """Our own ROLELAB_HOME, no AWS credentials or config, no real IMDS (as the test session does)."""
    if os.environ.get("ROLELAB_BENCH_HOME"):  # a parent bench process handed us its home
        home = Path(os.environ["ROLELAB_BENCH_HOME"])
    else:
        home = Path(tempfile.mkdtemp(prefix=f"rolelab-{prefix}-"))
        os.environ["ROLELAB_BENCH_HOME"] = str(home)
        atexit.register(_cleanup, home)  # only the process that made the home removes it
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        ROLELAB_HOME=str(home / "rolelab"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
    )
    return home


def _leftovers(directory: Path) -> list[str]:
    """What a stack directory still holds (first 20 paths), for a warning."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))[:20] if directory.exists() else []


def _cleanup(home: Path) -> None:
    """Safety net: take down any stack a crashed run left, then remove the temp home."""
    stacks = home / "rolelab" / "stacks"
    for stack in sorted(p.name for p in stacks.iterdir()) if stacks.is_dir() else []:
        print(f"cleanup: taking down leftover stack {stack!r} (holding {_leftovers(stacks / stack)})",
              file=sys.stderr)
        down(stack)
        if os.environ.get("ROLELAB_BENCH_KEEP") is None:
            os.environ["ROLELAB_BENCH_KEEP"] = "1"  # keep the logs of a run that left something behind
            print(f"cleanup: keeping {home} for its logs", file=sys.stderr)
    if not os.environ.get("ROLELAB_BENCH_KEEP"):
        shutil.rmtree(home, ignore_errors=True)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def machine() -> dict[str, Any]:
    mem_total = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:"))
    return {"nproc": CORES, "python": platform.python_version(), "kernel": platform.release(),
            "mem_total_mb": round(mem_total / 1024), "loadavg_start": loadavg(), **code_version()}


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the production code differed from it (others edit this tree)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "labs", "__main__.py", "Pulumi.yaml")
    return {"commit": git("rev-parse", "--short", "HEAD"), "production_changes": changed.splitlines()}


# -- child processes ----------------------------------------------------------------------

@dataclass
class Measured:
    argv: list[str]
    rc: int
    wall: float
    user: float  # CPU of the child itself (and its waited-for descendants), from wait4
    sys: float
    maxrss_kb: int
    stdout: str
    stderr: str

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def run_measured(argv: list[str], env: dict[str, str] | None = None, timeout: float = 900.0,
                 on_start: Callable[[int], None] | None = None, cwd: str | None = None) -> Measured:
    """Wall time, CPU and peak RSS of one child (os.wait4 reports exactly that child's usage)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                   cwd=cwd or str(ROOT))
        if on_start:
            on_start(process.pid)
        killer = threading.Timer(timeout, process.kill)  # a hung child must not hang the bench
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # exactly this child's CPU and peak RSS
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(argv, process.returncode, wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss,
                        out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def rolelab(*args: str, check: bool = True, **kwargs: Any) -> Measured:
    result = run_measured([ROLELAB, *args], **kwargs)
    if check and result.rc != 0:
        raise RuntimeError(f"rolelab {' '.join(args)} exited {result.rc}: {result.stderr.strip()[-800:]}")
    return result


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- stacks -------------------------------------------------------------------------------

FLAKES: list[dict[str, str]] = []  # `local up` failures that were retried (reported in each JSON)

def down(stack: str) -> Measured | None:
    directory = StackPaths.for_stack(stack).root
    if not directory.exists():
        return None
    result = rolelab("local", "down", "--stack", stack, check=False)
    if result.rc != 0 or directory.exists():
        print(f"WARNING: `rolelab local down --stack {stack}` exit {result.rc}: {result.stdout.strip()} "
              f"{result.stderr.strip()[-300:]}; left behind: {_leftovers(directory)}", file=sys.stderr, flush=True)
    return result


@contextmanager
def stack_up(stack: str, students: int = 1, extra: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """`rolelab local up` for a stack, yielding the measurement; always `local down` afterwards."""
    down(stack)
    info: dict[str, Any] = {}
    try:
        args = ["local", "up", "--stack", stack, *extra]
        if students != 1:
            args += ["--config", f"students={students}"]
        up = rolelab(*args, check=False)
        if up.rc != 0 and "Address already in use" in up.stderr:
            # A known race (the port a host's sshd was given was taken before it bound it): record
            # it, make sure nothing is left, and try once more.
            print(f"WARNING: {stack}: local up failed on a port race, retrying once: {up.stderr.strip()[-200:]}",
                  file=sys.stderr, flush=True)
            FLAKES.append({"stack": stack, "stderr": up.stderr.strip()[-400:]})
            down(stack)
            up = rolelab(*args, check=False)
        if up.rc != 0:
            raise RuntimeError(f"rolelab {' '.join(args)} exited {up.rc}: {up.stderr.strip()[-800:]}")
        info.update(up=up, up_seconds=parse_up_seconds(up.stdout), load=loadavg())
        yield info
    finally:
        info["down"] = down(stack)


def parse_up_seconds(stdout: str) -> float | None:
    """UpResult.seconds as the CLI prints it: "stack 'x' up in 3.4 s: ..." (0.1 s resolution)."""
    import re

    found = re.search(r" up in ([0-9.]+) s", stdout)
    return float(found.group(1)) if found else None


def outputs(stack: str):
    from labs.core import outputs as lab_outputs

    return lab_outputs.load(StackPaths.for_stack(stack).outputs)


def cloud_status(stack: str) -> dict[str, Any]:
    return json.loads(rolelab("local", "status", "--stack", stack, "--json").stdout)


def lab_pids(stack: str) -> tuple[int, list[int]]:
    """The lab cloud's PID and every host's sshd PID."""
    status = cloud_status(stack)
    return status["pid"], [h["sshd_pid"] for h in status["hosts"]]


def verify_cli(stack: str, cloud_pid: int, sshd_pids: list[int]) -> dict[str, Any]:
    """`rolelab verify --local` as a user runs it, with the CPU the lab cloud and the hosts spent meanwhile.
    Nothing samples during it (a sampler's CPU would be taken from verify)."""
    with CpuBudget(cloud_pid, sshd_pids) as budget:
        m = rolelab("verify", "--local", "--stack", stack, "-q", "--json", check=False)
    report = json.loads(m.stdout)
    return {"wall": m.wall, "cli_cpu": m.cpu, "rc": m.rc, "report_seconds": report.get("seconds"),
            "passed": report["summary"]["passed"], "checks": len(report["results"]),
            "verifier_maxrss_mb": mb(m.maxrss_kb), "cloud_cpu": budget.cloud, "hosts_cpu": budget.hosts,
            "check_seconds": [r["seconds"] for r in report["results"]]}


def host_env(outputs, host) -> dict[str, str]:
    """The environment a command gets on the host, read over SSH (the command `rolelab ssh` runs)."""
    from labs.remote.openssh import openssh_argv

    text = subprocess.run(openssh_argv(outputs, host, command=["env"]), capture_output=True, text=True,
                          check=True, timeout=60).stdout
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    for name in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "_", "SHLVL"):
        env.pop(name, None)
    return env


# -- the aws CLI floor ----------------------------------------------------------------------

def aws_runs(outputs, checks) -> list[tuple[dict[str, str], str]]:
    """(host environment, command) for every aws CLI run among the checks: what the floor runs locally."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # one SSH round trip per host; not timed
        envs = dict(zip([h.label for h in outputs.hosts], pool.map(lambda h: host_env(outputs, h), outputs.hosts),
                        strict=True))
    return [(envs[h.label], command) for h, command in aws_commands(checks)]


def aws_commands(checks) -> list[tuple[Any, str]]:
    """(host, command) for every check that is an aws CLI run (the rest are curl/shell scripts)."""
    return [(c.host, c.command) for c in checks if c.command.startswith("aws ")]


def aws_floor(runs: list[tuple[dict[str, str], str]], workers: int = CORES) -> dict[str, Any]:
    """Run the aws commands locally, each with its host's environment, and sum their CPU.

    RUSAGE_CHILDREN is process-wide, so the delta over the whole batch is exactly the CPU of
    these children (nothing else is spawned meanwhile). `workers` only shortens the wall time.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(item: tuple[dict[str, str], str]) -> int:
        env, command = item
        done = subprocess.run(shlex.split(command), env=env, cwd=env.get("PWD", "/"), capture_output=True,
                              timeout=120)
        return done.returncode

    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(pool.map(one, runs))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {"runs": len(runs), "exit_codes": sorted(set(codes)), "cpu_user": user, "cpu_sys": system,
            "cpu": user + system, "cpu_per_run": (user + system) / max(1, len(runs)),
            "floor_wall": (user + system) / CORES, "batch_wall": wall, "workers": workers}


# -- memory -------------------------------------------------------------------------------

def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kb(pid: int) -> int | None:
    return _status_kb(pid, "VmRSS")


def hwm_kb(pid: int) -> int | None:
    return _status_kb(pid, "VmHWM")


def pss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def statm_rss_kb(pid: int) -> int:
    """Cheap RSS for sampling loops."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, IndexError, ValueError):
        return 0


class MemorySampler:
    """Peak of the summed memory of process groups while something runs (a daemon thread).

    groups: name -> (callable returning root PIDs, whether their descendants count too).
    RSS (statm) and PSS (smaps_rollup) every `interval` s: RSS double-counts pages that forked sshds
    share; PSS splits them, so the PSS sum is the machine's real cost.
    """

    def __init__(self, groups: dict[str, tuple[Callable[[], list[int]], bool]], interval: float = 0.2):
        self.groups = groups
        self.interval = interval
        self.peak_rss: dict[str, int] = {g: 0 for g in groups}
        self.peak_pss: dict[str, int] = {g: 0 for g in groups}
        self.peak_total_rss = 0
        self.peak_total_pss = 0
        self.samples = 0
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="mem-sampler")

    def _pids(self) -> dict[str, list[int]]:
        tree = process_tree()
        result = {}
        for name, (roots, with_descendants) in self.groups.items():
            pids = []
            for root in roots():
                pids.append(root)
                if with_descendants:
                    pids.extend(descendants(root, tree))
            result[name] = sorted(set(pids))
        return result

    def _loop(self) -> None:
        started = time.thread_time()
        tick = 0
        while not self._stop.is_set():
            pids = self._pids()
            rss = {g: sum(statm_rss_kb(p) for p in ps) for g, ps in pids.items()}
            for g, value in rss.items():
                self.peak_rss[g] = max(self.peak_rss[g], value)
            self.peak_total_rss = max(self.peak_total_rss, sum(rss.values()))
            pss = {g: sum(pss_kb(p) or 0 for p in ps) for g, ps in pids.items()}
            for g, value in pss.items():
                self.peak_pss[g] = max(self.peak_pss[g], value)
            self.peak_total_pss = max(self.peak_total_pss, sum(pss.values()))
            tick += 1
            self.samples = tick
            self._stop.wait(self.interval)
        self.cpu = time.thread_time() - started

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict[str, Any]:
        return {"peak_total_rss_mb": mb(self.peak_total_rss), "peak_total_pss_mb": mb(self.peak_total_pss),
                "peak_rss_mb": {g: mb(v) for g, v in self.peak_rss.items()},
                "peak_pss_mb": {g: mb(v) for g, v in self.peak_pss.items()},
                "samples": self.samples, "sampler_cpu_s": round(self.cpu, 3)}


def mb(kb: int | float | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


# -- figures ------------------------------------------------------------------------------

def median(values: Iterable[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def spread(values: Iterable[float | None]) -> str:
    clean = sorted(v for v in values if v is not None)
    return f"{clean[0]:.3g}..{clean[-1]:.3g}" if clean else "-"


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return "PASS" if value <= target else "MISS"


def line(name: str, value: float | None, unit: str, target: float | None = None, runs: Iterable | None = None,
         note: str = "") -> dict[str, Any]:
    """Print one figure (median), its spread over the runs, and its target with PASS/MISS."""
    runs = list(runs) if runs is not None else None
    shown = "-" if value is None else f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    text = f"  {name:<52} {shown:>9} {unit:<6}"
    if runs:
        text += f" [{spread(runs)} over {len([r for r in runs if r is not None])}]"
    if target is not None:
        text += f"  target <= {target:g} {unit}: {verdict(value, target)}"
    if note:
        text += f"  ({note})"
    print(text, flush=True)
    return {"name": name, "median": value, "unit": unit, "runs": runs, "target": target,
            "verdict": verdict(value, target) if target is not None else None, "note": note}


def figure(name: str, runs: list, unit: str, target: float | None = None, note: str = "") -> dict[str, Any]:
    """`line` for a figure whose value is the median of its runs."""
    return line(name, median(runs), unit, target, runs, note)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def write_json(name: str, data: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    data["flakes"] = FLAKES
    data = {"script": f"bench/{name}.py", "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]),
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), **data}
    path.write_text(json.dumps(data, indent=2, default=_jsonable))
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Measured):
        d = asdict(value)
        d["stdout"], d["stderr"] = d["stdout"][-500:], d["stderr"][-500:]
        return d
    return str(value)


def header(title: str, repeat: int) -> dict[str, Any]:
    info = machine()
    dirty = f" + {len(info['production_changes'])} uncommitted production file(s)" if info["production_changes"] else ""
    print(f"== {title}\n   {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, commit {info['commit']}{dirty}, "
          f"nproc {info['nproc']}, load {' '.join(str(x) for x in info['loadavg_start'])}, repeat {repeat} "
          f"(median shown, [min..max])", flush=True)
    return info


# -- CPU accounting of processes we did not start -------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own user+sys, reaped children's user+sys) in seconds, from /proc/PID/stat.

    An sshd listener reaps its session processes, which reap bash and the aws CLI, so its
    children figure grows by everything a finished command cost on that host."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / _TICK, (cutime + cstime) / _TICK


class CpuBudget:
    """CPU that the lab cloud (moto, IMDS) and the hosts (sshd sessions, bash, aws CLI) spent
    between enter and exit.

    Hosts: the sum of (own + reaped children's) CPU over every sshd listener and every live
    process below it. A process's CPU moves into its parent's children figure when it is reaped,
    so the sum counts each finished or running command exactly once."""

    def __init__(self, cloud_pid: int, sshd_pids: list[int]):
        self.cloud_pid, self.sshd_pids = cloud_pid, sshd_pids

    def _read(self) -> tuple[float, float]:
        tree = process_tree()
        pids = set(self.sshd_pids)
        for pid in self.sshd_pids:
            pids.update(descendants(pid, tree))
        return proc_cpu(self.cloud_pid)[0], sum(sum(proc_cpu(p)) for p in pids)

    def __enter__(self) -> CpuBudget:
        self._before = self._read()
        return self

    def __exit__(self, *exc) -> None:
        after = self._read()
        self.cloud = after[0] - self._before[0]
        self.hosts = after[1] - self._before[1]

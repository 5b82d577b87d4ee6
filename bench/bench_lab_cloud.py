"""Issue 3: how fast the local lab cloud comes up and goes down, and what it costs in memory.

Per repeat, in the same run and under the same load:
  floors   a bare ThreadedMotoServer in a fresh process (same moto env vars): time until it
           answers HTTP, and its RSS; a bare `aws --version` inside a host over SSH (wall, CPU);
  lab      `rolelab local up` for 1 student (2 hosts) and for 5 students (10 hosts): CLI wall
           and UpResult.seconds, the lab cloud's RSS/PSS, each sshd's RSS/PSS; `local down` wall.
Per extra host = (5-student figure - 1-student figure) / 8 hosts.

    .venv/bin/python bench/bench_lab_cloud.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

TARGET_UP_ONE = 5.0  # s, one student ready
TARGET_PER_HOST_S = 0.5
TARGET_PER_HOST_MB = 15.0
CLASS = 5  # students in the bigger stack; 2 hosts each

MOTO_CHILD = """
import sys, threading  # moto's settings come in the environment (see moto_floor)
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
if sys.argv[2] in ("iam", "lab"):  # also build the IAM backend (the managed policies), as the bootstrap does
    from moto.iam.models import iam_backends
    iam_backends["123456789012"]["global"]
if sys.argv[2] == "lab":  # and every backend the lab uses, with the AMI parameter the program reads
    from moto.ec2.models import ec2_backends
    from moto.ssm.models import ssm_backends
    from moto.sts.models import sts_backends
    from moto.s3.models import s3_backends
    from moto.logs.models import logs_backends
    ec2_backends["123456789012"]["us-east-1"]
    sts_backends["123456789012"]["global"]
    s3_backends["123456789012"]["aws"]
    logs_backends["123456789012"]["us-east-1"]
    ssm_backends["123456789012"]["us-east-1"].get_parameter(
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
print("loaded", flush=True)
threading.Event().wait()
"""


def moto_floor(variant: str) -> dict:
    """Spawn -> first HTTP answer of a bare moto server; its RSS/PSS once it answers."""
    from labs.labcloud.procs import free_port

    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0", MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    started = time.perf_counter()
    process = subprocess.Popen([c.PYTHON, "-c", MOTO_CHILD, str(port), variant], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        answered = None
        while answered is None and time.perf_counter() - started < 60:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=1).read()
                answered = time.perf_counter() - started
            except urllib.error.HTTPError:
                answered = time.perf_counter() - started  # any HTTP answer counts
            except (urllib.error.URLError, OSError):
                time.sleep(0.01)
        process.stdout.readline()  # wait until the backends asked for exist
        loaded = time.perf_counter() - started
        return {"ready_s": answered, "loaded_s": loaded, "rss_mb": c.mb(c.rss_kb(process.pid)),
                "pss_mb": c.mb(c.pss_kb(process.pid))}
    finally:
        process.terminate()
        process.wait(timeout=10)


def parse_times(text: str) -> float | None:
    """bash `times`: the second line is the children's user and sys time, e.g. 0m0.240s 0m0.045s."""
    found = re.findall(r"(\d+)m([\d.]+)s", text)
    if len(found) < 4:
        return None
    (um, us), (sm, ss) = found[2], found[3]
    return int(um) * 60 + float(us) + int(sm) * 60 + float(ss)


def aws_version_over_ssh(stack: str) -> dict:
    import paramiko

    from labs.remote.openssh import openssh_argv
    from labs.remote.session import HostSession

    outputs = c.outputs(stack)
    host = outputs.host("with-role")
    bare = c.run_measured(openssh_argv(outputs, host, command=["true"]))
    aws = c.run_measured(openssh_argv(outputs, host, command=["aws --version; times"]))
    with HostSession(host, paramiko.HostKeys(outputs.known_hosts), outputs.private_key_path,
                     local_only=True) as session:
        session.run("true")  # warm the connection; time only the channel + command
        started = time.perf_counter()
        result = session.run("aws --version; times")
        channel_wall = time.perf_counter() - started
    return {"ssh_true_wall": bare.wall, "ssh_aws_wall": aws.wall, "aws_cpu_remote": parse_times(aws.stdout),
            "ssh_client_cpu": aws.cpu, "paramiko_channel_wall": channel_wall,
            "paramiko_aws_cpu_remote": parse_times(result.stdout), "aws_version": aws.stderr.strip() or aws.stdout.split("\n")[0]}


def measure_stack(stack: str, students: int) -> dict:
    row: dict = {"students": students}
    with c.stack_up(stack, students) as info:
        status = c.cloud_status(stack)
        cloud = status["pid"]
        sshds = [h["sshd_pid"] for h in status["hosts"]]
        row.update(hosts=len(status["hosts"]), up_wall=info["up"].wall, up_seconds=info["up_seconds"],
                   up_cli_cpu=info["up"].cpu, load=info["load"], cloud_cpu_at_ready=c.proc_cpu(cloud)[0],
                   cloud_rss_mb=c.mb(c.rss_kb(cloud)), cloud_pss_mb=c.mb(c.pss_kb(cloud)),
                   cloud_hwm_mb=c.mb(c.hwm_kb(cloud)),
                   sshd_rss_mb=c.median(c.mb(c.rss_kb(p)) for p in sshds),
                   sshd_pss_mb=c.median(c.mb(c.pss_kb(p)) for p in sshds),
                   host_ready_s=c.median(h["ready_seconds"] for h in status["hosts"]))
        if students == 1:
            row["ssh"] = aws_version_over_ssh(stack)
    row["down_wall"] = info["down"].wall if info.get("down") else None
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = c.isolate("bench-lab-cloud")
    info = c.header("bench_lab_cloud (issue 3): local up / down, memory per host, floors", args.repeat)
    runs: list[dict] = []
    for i in range(args.repeat):
        run = {"load_before": c.loadavg(), "moto": moto_floor("bare"), "moto_iam": moto_floor("iam"),
               "moto_lab": moto_floor("lab")}
        run["one"] = measure_stack(f"bench-lc1-{i}", 1)
        run["class"] = measure_stack(f"bench-lc{CLASS}-{i}", CLASS)
        extra_hosts = run["class"]["hosts"] - run["one"]["hosts"]
        one, cls = run["one"], run["class"]
        run["per_host"] = {
            "hosts_added": extra_hosts,
            "up_wall_s": (cls["up_wall"] - one["up_wall"]) / extra_hosts,
            "up_seconds_s": (cls["up_seconds"] - one["up_seconds"]) / extra_hosts,
            "cloud_rss_mb": (cls["cloud_rss_mb"] - one["cloud_rss_mb"]) / extra_hosts,
            "cloud_pss_mb": (cls["cloud_pss_mb"] - one["cloud_pss_mb"]) / extra_hosts,
            "down_wall_s": (cls["down_wall"] - one["down_wall"]) / extra_hosts,
        }
        ph = run["per_host"]
        ph["mem_rss_mb"] = ph["cloud_rss_mb"] + cls["sshd_rss_mb"]
        ph["mem_pss_mb"] = ph["cloud_pss_mb"] + cls["sshd_pss_mb"]
        run["load_after"] = c.loadavg()
        runs.append(run)
        print(f"   run {i + 1}/{args.repeat}: up(1) {one['up_wall']:.2f} s, up({CLASS}) {cls['up_wall']:.2f} s, "
              f"load {run['load_after'][0]}", flush=True)

    col = lambda f: [f(r) for r in runs]  # noqa: E731
    one = lambda k: col(lambda r: r["one"][k])  # noqa: E731
    whole_class = lambda k: col(lambda r: r["class"][k])  # noqa: E731
    ph = lambda k: col(lambda r: r["per_host"][k])  # noqa: E731
    moto = lambda k, v="moto": col(lambda r: r[v][k])  # noqa: E731
    ssh = lambda k: col(lambda r: r["one"]["ssh"][k])  # noqa: E731
    figures = []
    fig = lambda *a, **kw: figures.append(c.figure(*a, **kw))  # noqa: E731

    print("\n-- one student (2 hosts)")
    fig("local up, CLI wall", one("up_wall"), "s", TARGET_UP_ONE)
    fig("local up, UpResult.seconds", one("up_seconds"), "s", TARGET_UP_ONE, "0.1 s resolution")
    fig("local up, CLI process CPU", one("up_cli_cpu"), "s")
    fig("lab cloud CPU from spawn to ready", one("cloud_cpu_at_ready"), "s")
    busy = col(lambda r: (r["one"]["up_cli_cpu"] + r["one"]["cloud_cpu_at_ready"]) / c.CORES / r["one"]["up_wall"])
    fig("  (CLI + cloud CPU) / cores / up wall", busy, "x", note="1.0 would be both cores busy throughout")
    fig("local down, CLI wall", one("down_wall"), "s")
    fig("lab cloud RSS (VmRSS)", one("cloud_rss_mb"), "MB")
    fig("lab cloud PSS (smaps_rollup)", one("cloud_pss_mb"), "MB")
    fig("one sshd RSS", one("sshd_rss_mb"), "MB")
    fig("one sshd PSS", one("sshd_pss_mb"), "MB")
    fig("host ready (sshd start, lab cloud's own clock)", one("host_ready_s"), "s")

    print(f"\n-- {CLASS} students ({CLASS * 2} hosts)")
    fig("local up, CLI wall", whole_class("up_wall"), "s")
    fig("local up, UpResult.seconds", whole_class("up_seconds"), "s")
    fig("local down, CLI wall", whole_class("down_wall"), "s")
    fig("lab cloud RSS", whole_class("cloud_rss_mb"), "MB")
    fig("lab cloud PSS", whole_class("cloud_pss_mb"), "MB")

    print("\n-- per extra host ((5 students - 1 student) / 8 hosts)")
    fig("up time per extra host (CLI wall)", ph("up_wall_s"), "s", TARGET_PER_HOST_S)
    fig("up time per extra host (UpResult.seconds)", ph("up_seconds_s"), "s", TARGET_PER_HOST_S)
    fig("memory per extra host: cloud RSS growth + sshd RSS", ph("mem_rss_mb"), "MB", TARGET_PER_HOST_MB)
    fig("memory per extra host: cloud PSS growth + sshd PSS", ph("mem_pss_mb"), "MB", TARGET_PER_HOST_MB)
    fig("  of which lab cloud RSS growth", ph("cloud_rss_mb"), "MB")
    fig("down time per extra host", ph("down_wall_s"), "s")

    print("\n-- floors (same run)")
    fig("bare moto: spawn -> first HTTP answer", moto("ready_s"), "s")
    fig("bare moto RSS at first answer", moto("rss_mb"), "MB")
    fig("bare moto + IAM backend built: time", moto("loaded_s", "moto_iam"), "s")
    fig("bare moto + IAM backend built: RSS", moto("rss_mb", "moto_iam"), "MB")
    fig("moto + all the lab's backends built: time", moto("loaded_s", "moto_lab"), "s")
    fig("moto + all the lab's backends built: RSS", moto("rss_mb", "moto_lab"), "MB")
    fig("OpenSSH `ssh host true`, wall", ssh("ssh_true_wall"), "s")
    fig("OpenSSH `ssh host 'aws --version'`, wall", ssh("ssh_aws_wall"), "s")
    fig("  aws --version CPU on the host (user+sys)", ssh("aws_cpu_remote"), "s")
    fig("paramiko channel (warm conn) 'aws --version', wall", ssh("paramiko_channel_wall"), "s")

    one_up = c.median(one("up_wall"))
    moto_ready = c.median(moto("ready_s"))
    print("\n-- ratios")
    figures.append(c.line("local up (1 student) / bare moto start", c.ratio(one_up, moto_ready), "x"))
    figures.append(c.line("lab cloud RSS (1 student) / bare moto RSS",
                          c.ratio(c.median(one("cloud_rss_mb")), c.median(moto("rss_mb"))), "x"))
    print(f"\n   load at end {c.loadavg()}; ROLELAB_HOME {home}")
    c.write_json("bench_lab_cloud", {"machine": info, "load_end": c.loadavg(), "repeat": args.repeat,
                                     "figures": figures, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())

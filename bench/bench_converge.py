"""Issue 15: `local up` on a running stack, measured beside the CLI's own start-up.

Per repeat, in the same run and under the same load:
  floor     `rolelab local status --json` on the same stack: a CLI process that reads the stack
            and asks the lab cloud once (start-up, imports, one request);
  nothing   `rolelab local up` with the config it already has: drift read from the account, nothing to change;
  join      a class of CLASS students, then `local up` with CLASS + 1: the program runs under the
            converging engine, one student's role and two hosts are made, the others untouched.
            The stack's warm host runs it (labs.cli.warm), as it does for anyone typing the command;
  cold      the same with ROLELAB_WARM=0 (CLASS + 2): the command imports everything itself.

    .venv/bin/python bench/bench_converge.py [--repeat N] [--class-size 20]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

TARGET_NOTHING = 1.0  # s, `local up` with nothing to change
TARGET_JOIN = 1.5  # s, one late student joins a running class


def cli(*argv: str, env: dict[str, str] | None = None) -> c.Measured:
    measured = c.run_measured([c.ROLELAB, *argv], env=env)
    if measured.rc != 0:
        raise SystemExit(f"rolelab {' '.join(argv)} failed ({measured.rc}): {measured.stderr[-400:]}")
    return measured


def one_repeat(size: int, index: int) -> dict:
    stack = f"bench-converge-{index}"
    students = f"students={size}"
    cli("local", "up", "--stack", stack, "-c", students, "--json")
    try:
        floor = cli("local", "status", "--stack", stack, "--json")
        nothing = cli("local", "up", "--stack", stack, "-c", students, "--json")
        join = cli("local", "up", "--stack", stack, "-c", f"students={size + 1}", "--json")
        cold = cli("local", "up", "--stack", stack, "-c", f"students={size + 2}", "--json",
                   env={**os.environ, "ROLELAB_WARM": "0"})
    finally:
        cli("local", "down", "--stack", stack)
    return {"floor": floor.wall, "nothing": nothing.wall, "join": join.wall, "cold": cold.wall,
            "cold_cpu": cold.cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--class-size", type=int, default=20)
    args = parser.parse_args()
    c.isolate("converge")
    info = c.header(f"converging local up: nothing to change, and student {args.class_size + 1} joining",
                    args.repeat)
    runs = [one_repeat(args.class_size, i) for i in range(args.repeat)]
    col = lambda key: [r[key] for r in runs]  # noqa: E731
    figures = [
        c.figure("floor: `local status --json` (CLI start + one request)", col("floor"), "s"),
        c.figure("`local up`, nothing to change, CLI wall", col("nothing"), "s", TARGET_NOTHING),
        c.figure(f"`local up`, student {args.class_size + 1} joins a class of {args.class_size}", col("join"), "s",
                 TARGET_JOIN),
        c.figure(f"the same with ROLELAB_WARM=0 (student {args.class_size + 2}, the command imports everything)",
                 col("cold"), "s"),
        c.figure("CPU of the cold join's `rolelab` process", col("cold_cpu"), "s"),
        c.figure("nothing to change / floor", [r["nothing"] / r["floor"] for r in runs], "x"),
        c.figure("one student joins / floor", [r["join"] / r["floor"] for r in runs], "x"),
    ]
    c.write_json("bench_converge", {"machine": info, "runs": runs, "figures": figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

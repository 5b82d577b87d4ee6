"""The command line for people: the parser and thin commands (labs.cli.main), and the console script.

Kept light: a converging command served by its stack's warm host (labs.cli.warm) imports nothing else."""

import os
import sys


def run() -> None:
    """The `rolelab` console script (and `python -m labs.cli`)."""
    from labs.cli import warm

    code = warm.served(sys.argv[1:])
    if code is not None:
        os._exit(code)
    warm.hosting = True  # a fresh `local up` run from here may leave its stack a warm host
    from labs.cli.main import run as run_here

    run_here()

"""`python -m labs.cli`: the same as the `rolelab` console script."""

from labs.cli import run

run()

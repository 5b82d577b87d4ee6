"""The command line for people: the parser and thin commands (labs.cli.main)."""

from labs.cli.main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]

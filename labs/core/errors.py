"""One root exception and the exit codes a person or CI can act on."""

from __future__ import annotations

from enum import IntEnum

from labs.core.grammar import shown


class ExitStatus(IntEnum):
    OK = 0
    LAB_WRONG = 1  # an expectation of the lesson failed: the lab is broken
    USAGE = 2  # bad flags, config, roster, outputs or state: fix the input
    UNREACHABLE = 3  # infrastructure did not answer (SSH, timeouts, lab cloud)
    INTERNAL = 70  # a bug in rolelab itself (EX_SOFTWARE); the log has the traceback
    HANGUP = 129  # SIGHUP (the terminal went away): cleaned up as for Ctrl-C
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM (e.g. `timeout`, CI cancelling a job): cleaned up as for Ctrl-C


class RolelabError(Exception):
    """An error that reaches a person as one actionable line."""

    exit_status = ExitStatus.USAGE


class UsageError(RolelabError):
    exit_status = ExitStatus.USAGE


class ConfigError(UsageError):
    """A config value is invalid; names the key, the bad value and the fix."""

    def __init__(self, key: str, value: object, problem: str, fix: str):
        self.key, self.value, self.problem, self.fix = key, value, problem, fix
        value_text = "(not set)" if value in (None, "") else shown(value)  # never echo 100 kB back
        super().__init__(f"rolelab:{key} = {value_text}: {problem}; {fix}")


class InfraError(RolelabError):
    """Something we depend on did not answer: a host, the lab cloud, a port."""

    exit_status = ExitStatus.UNREACHABLE


class LabWrong(RolelabError):
    """The lab answered, but not as the lesson says it should."""

    exit_status = ExitStatus.LAB_WRONG

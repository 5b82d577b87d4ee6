"""Paths written into OpenSSH configuration (sshd_config lines, `ssh -o`), quoted for it.

OpenSSH splits option values on whitespace (UserKnownHostsFile takes a list) unless they
are double-quoted, and expands %-tokens in some of them (AuthorizedKeysFile,
UserKnownHostsFile, IdentityFile), where a literal % is written %%.
A path holding a double quote or a line break cannot be written at all: refuse it.
"""

from __future__ import annotations

from labs.core.errors import UsageError


def _check(path: str) -> str:
    if '"' in path or not path.isprintable():
        raise UsageError(f"path {path!r} holds a double quote or a control character, which OpenSSH's "
                         "configuration cannot express; use a directory without them (e.g. set ROLELAB_HOME)")
    return path


def escape_tokens(path: str) -> str:
    """For options that expand %-tokens and are given as their own argv word (ssh -i)."""
    return _check(path).replace("%", "%%")


def quoted(path: str, tokens: bool = True) -> str:
    """A config value: double-quoted, and with % doubled where the option expands tokens."""
    return f'"{escape_tokens(path) if tokens else _check(path)}"'

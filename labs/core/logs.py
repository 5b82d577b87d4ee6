"""Details go to a log file; people get one line. Where the files live."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
_kept_log: Path | None = None  # the log file setup() could open, if any


def rolelab_home() -> Path:
    """All local state: $ROLELAB_HOME, else $XDG_STATE_HOME/rolelab, else ~/.local/state/rolelab.

    A relative ROLELAB_HOME is made absolute once, in the environment too: the lab cloud
    and the hosts run in other working directories and must find the same state.
    """
    raw = os.environ.get("ROLELAB_HOME")
    if raw:
        home = Path(raw).expanduser()
        if not home.is_absolute():
            home = home.absolute()
            os.environ["ROLELAB_HOME"] = str(home)
        return home
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base).absolute() / "rolelab"


def log_file() -> Path:
    return rolelab_home() / "logs" / "rolelab.log"


def kept_log() -> Path | None:
    """The log file this process writes, or None when the home is read-only or full."""
    return _kept_log


_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR}
_CREATE_ERRNOS = _WRITE_ERRNOS | {errno.ENOENT, errno.EEXIST}  # for the home itself: it cannot be made


def home_problem(error: BaseException) -> str | None:
    """One line for an OSError writing the state under ROLELAB_HOME (read-only, full, not a
    directory): the user's to fix, so exit 2, not a bug. None for any other error."""
    home = rolelab_home()
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _CREATE_ERRNOS:
            name = Path(os.fsdecode(seen.filename)).absolute() if seen.filename is not None else None
            the_home = name is not None and (name == home or name in home.parents)
            inside = name is not None and home in name.parents and seen.errno in _WRITE_ERRNOS
            if the_home or inside:
                return (f"ROLELAB_HOME {home}: cannot write {name} ({seen.strerror}); point ROLELAB_HOME at a "
                        "writable directory with free space, or unset it")
            if name is None and seen.errno in (errno.ENOSPC, errno.EDQUOT):  # a write() names no file
                return (f"no space left while writing the lab's state ({seen.strerror}); free some space where "
                        f"ROLELAB_HOME {home} lives, or point ROLELAB_HOME elsewhere")
        seen = seen.__cause__ or seen.__context__
    return None


def setup(verbose: bool = False) -> None:
    global _kept_log
    root = logging.getLogger("rolelab")
    if root.handlers:
        return
    root.setLevel(logging.DEBUG)
    root.propagate = False
    try:
        log_file().parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file())
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
        _kept_log = log_file()
    except OSError:
        # A read-only home must not stop the lab, nor turn errors into tracebacks on stderr
        # (logging's last-resort handler would print them): details are simply not kept.
        root.addHandler(logging.NullHandler())
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(stream)

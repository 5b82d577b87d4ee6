"""Details go to a log file; people get one line. Where the files live."""

from __future__ import annotations

import logging
import os
from pathlib import Path

_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def rolelab_home() -> Path:
    """All local state: $ROLELAB_HOME, else $XDG_STATE_HOME/rolelab, else ~/.local/state/rolelab."""
    if os.environ.get("ROLELAB_HOME"):
        return Path(os.environ["ROLELAB_HOME"]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "rolelab"


def log_file() -> Path:
    return rolelab_home() / "logs" / "rolelab.log"


def setup(verbose: bool = False) -> None:
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
    except OSError:
        # A read-only home must not stop the lab, nor turn errors into tracebacks on stderr
        # (logging's last-resort handler would print them): details are simply not kept.
        root.addHandler(logging.NullHandler())
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(stream)

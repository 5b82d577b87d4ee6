"""One config error, said once: not once more per resource that depended on the failed value."""

from __future__ import annotations

import asyncio

from labs.core.errors import RolelabError


def said_once(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """A RolelabError raised inside an apply reaches every Output built on it; the one the run awaits
    reports it, and the others would each print "Future exception was never retrieved" and a traceback."""
    if isinstance(context.get("exception"), RolelabError) and "never retrieved" in context.get("message", ""):
        return
    loop.default_exception_handler(context)


def quiet_repeated_errors() -> None:
    asyncio.get_event_loop().set_exception_handler(said_once)

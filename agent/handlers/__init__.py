"""Message handlers of the agent, registered per message type (one table, no core edits).

A handler is ``fn(agent, msg, sender) -> Message | None``: ``agent`` is the running
:class:`agent.server.Agent`, ``msg`` the decoded :class:`agent.protocol.Message`, ``sender``
the ZeroMQ routing id of whoever sent it. The returned message (if any) is the reply; raising a
``DianneError`` (or :class:`agent.protocol.ProtocolError` with a code) sends an ``error`` reply
instead, and the agent keeps serving. Add a message type by putting a module in this package::

    from agent.handlers import handler

    @handler("profile")
    def profile(agent, msg, sender):
        return msg.reply("profile", {...})

Every module of this package is imported when the agent starts (:func:`load_all`), so a new
file is enough. Type names are unique; registering one twice is an error.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any, bytes], Any]
HANDLERS: dict[str, Handler] = {}


def handler(*types: str) -> Callable[[Handler], Handler]:
    """Decorator: route messages of these ``types`` to the decorated function."""

    def wrap(fn: Handler) -> Handler:
        for t in types:
            if t in HANDLERS and HANDLERS[t] is not fn:
                raise ValueError(f"message type {t!r} already has a handler "
                                 f"({HANDLERS[t].__module__}.{HANDLERS[t].__name__})")
            HANDLERS[t] = fn
        return fn

    return wrap


def load_all() -> dict[str, Handler]:
    """Import every handler module of this package; returns the table."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")
    return HANDLERS

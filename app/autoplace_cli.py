"""``--placement auto`` for the CLI: its options and the function ``dianne deploy`` calls.

Light on purpose (no numpy, ZeroMQ or agent imports until a command runs), because the options
are added while ``dianne --help`` builds its parsers. The work is :mod:`app.autoplace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def add_auto_options(p: Any) -> None:
    """The options of ``--placement auto`` (added to ``dianne deploy``)."""
    p.add_argument("--objective", choices=("latency", "bytes", "throughput"),
                   help="with --placement auto: what to minimise "
                                           "(latency of one sample, bytes sent, or the "
                                           "period of a pipelined stream; default latency)")
    p.add_argument("--pin", action="append", default=[], metavar="MODULE=AGENT",
                   help="with --placement auto: keep MODULE (uuid or name) on AGENT (id or "
                        "name); repeatable, e.g. --pin Input=camera")


def misplaced_auto_options(args: Any) -> str | None:
    """The usage error when ``--objective`` or ``--pin`` come without ``--placement auto``
    (they would be ignored), else None."""
    given = [opt for opt, value in (("--objective", getattr(args, "objective", None)),
                                    ("--pin", getattr(args, "pin", None))) if value]
    if given and getattr(args, "placement", None) != "auto":
        verb = "apply" if len(given) > 1 else "applies"
        return f"{' and '.join(given)} {verb} only with --placement auto"
    return None


def parse_pins(items: Sequence[str]) -> dict[str, str]:
    from engine.errors import DianneError  # noqa: PLC0415

    pins = {}
    for item in items:
        module, sep, agent = item.partition("=")
        if not sep or not module.strip() or not agent.strip():
            raise DianneError(f"--pin takes MODULE=AGENT. Received: {item!r}")
        pins[module.strip()] = agent.strip()
    return pins


def auto_placement(args: Any, desc: Any) -> dict[str, str]:
    """``--placement auto``: profile and measure the agents the command finds, plan, print the
    plan on stderr (stdout stays for the command's own output) and return the placement."""
    import sys  # noqa: PLC0415

    from agent.session import Session  # noqa: PLC0415
    from app.autoplace import format_plan, plan_for_agents  # noqa: PLC0415
    from app.cmds.agents import find_agents, load_keys  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    session = Session(load_keys(args))
    try:
        infos = find_agents(args, session)
        if not infos:
            raise DianneError("--placement auto: no DIANNE agent found (start one with "
                              "'dianne-agent', or give --agent tcp://HOST:PORT)")
        objective = getattr(args, "objective", None) or "latency"
        auto = plan_for_agents(desc, infos, objective=objective,
                               pins=parse_pins(getattr(args, "pin", [])), session=session)
    finally:
        session.close()
    print(format_plan(auto), file=sys.stderr)
    return auto.placement

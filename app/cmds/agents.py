"""``dianne agents``, ``dianne deploy``, ``dianne undeploy`` and ``dianne keys generate``.

Agents are found by zeroconf (``--interface IP`` to browse one interface) unless addresses are
given with ``--agent ADDR`` (repeatable) or ``DIANNE_AGENTS=ADDR,...``. With CURVE keys
(``--keys DIR`` or ``DIANNE_KEYS``) every connection is encrypted and authenticated.
:func:`find_agents`, :func:`choose_placement`, :func:`deploy_model` and :func:`placement_lines`
are shared with ``dianne eval/run --placement``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DISCOVERY_TIMEOUT_S = 2.0


def register(sub: argparse._SubParsersAction) -> None:
    from app.cli import add_agent_options  # noqa: PLC0415

    p = sub.add_parser("agents", help="list the DIANNE agents found on the network")
    add_agent_options(p)
    _add_keys(p)
    p.add_argument("--timeout", type=float, default=DISCOVERY_TIMEOUT_S, metavar="S",
                   help=f"seconds to browse (default {DISCOVERY_TIMEOUT_S})")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_agents)

    p = sub.add_parser("deploy", help="deploy a network on agents and leave it deployed")
    p.add_argument("model", metavar="MODEL", help="network folder, modules.txt, zip or name")
    p.add_argument("--placement", required=True, metavar="FILE",
                   help='JSON file {"<module uuid>": "<agent id or name>", ...}, or "auto": '
                        'profile the agents, measure the links and plan (app.autoplace)')
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="weight tag")
    add_agent_options(p)
    _add_keys(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    from app.autoplace_cli import add_auto_options  # noqa: PLC0415  (planner hook)

    add_auto_options(p)
    p.set_defaults(handler=cmd_deploy)

    p = sub.add_parser("undeploy", help="remove a deployed network from the agents")
    p.add_argument("model", metavar="MODEL", help="network (name, folder) or deployment id")
    add_agent_options(p)
    _add_keys(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_undeploy)

    p = sub.add_parser("keys", help="CURVE keys for agents and clients")
    keys = p.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    g = keys.add_parser("generate", help="create the agent keypair and a client keypair in DIR")
    g.add_argument("dir", metavar="DIR")
    g.add_argument("--name", default="client", help="client key name (default client)")
    g.set_defaults(handler=cmd_keys_generate)


def _add_keys(p: argparse.ArgumentParser) -> None:
    if "--keys" in p._option_string_actions:  # app.cli.add_agent_options may add it too
        return
    p.add_argument("--keys", metavar="DIR", help="CURVE key folder (default: $DIANNE_KEYS)")


# ---------------------------------------------------------------------------- shared helpers
def load_keys(args: argparse.Namespace) -> Any:
    from agent.keys import load  # noqa: PLC0415

    folder = getattr(args, "keys", None) or os.environ.get("DIANNE_KEYS")
    return load(folder) if folder else None


def explicit_addresses(args: argparse.Namespace) -> list[str]:
    given = list(getattr(args, "agent", None) or [])
    if not given and os.environ.get("DIANNE_AGENTS"):
        given = [a.strip() for a in os.environ["DIANNE_AGENTS"].split(",") if a.strip()]
    return given


def find_agents(args: argparse.Namespace, session: Any = None,
                timeout: float = DISCOVERY_TIMEOUT_S) -> list[Any]:
    """AgentInfo of every agent: the explicit addresses (each must answer; one agent given
    twice is listed once), else discovery."""
    from agent.client import discover  # noqa: PLC0415

    keys = session.keys if session is not None else load_keys(args)
    addresses = explicit_addresses(args)
    if not addresses:
        return discover(getattr(args, "interface", None), timeout=timeout, keys=keys)
    from agent.client import connect_all  # noqa: PLC0415
    from agent.session import Session  # noqa: PLC0415

    own = session is None
    session = session or Session(keys)
    try:  # an agent given twice (or under two addresses) is listed once
        return [c.info for c in connect_all(session, addresses)]
    finally:
        if own:
            session.close()


def read_placement(path: str) -> dict[str, str]:
    from engine.errors import DianneError  # noqa: PLC0415

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DianneError(f"{path}: cannot read the placement file: {exc.strerror}") from None
    except ValueError as exc:
        raise DianneError(f"{path}: the placement file is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise DianneError(f'{path}: a placement file is {{"<module uuid>": "<agent id or '
                          f'name>", ...}}. Received: {str(doc)[:80]}')
    return doc


def choose_placement(args: argparse.Namespace, desc: Any) -> dict[str, str]:
    """``--placement``: ``auto`` (planner hook: profile, measure, plan; the plan is printed on
    stderr) or a placement file."""
    if args.placement == "auto":
        from app.autoplace_cli import auto_placement  # noqa: PLC0415

        return auto_placement(args, desc)
    return read_placement(args.placement)


def deploy_model(args: argparse.Namespace, desc: Any, weights: dict, placement: dict | None,
                 on: str | None = None) -> Any:
    """Deploy ``desc`` on the agents of ``placement`` (or all of it on agent ``on``)."""
    from agent.client import deploy  # noqa: PLC0415
    from agent.session import Session  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    session = Session(load_keys(args))
    try:
        infos = find_agents(args, session)
        if not infos:
            where = f" on {args.interface}" if getattr(args, "interface", None) else ""
            raise DianneError(f"no DIANNE agent found{where} (start one with 'dianne-agent', "
                              f"or give --agent tcp://HOST:PORT)")
        if on is not None:
            placement = {m: on for m in desc.modules}
        return deploy(desc, weights, placement or {}, infos, session=session)
    except BaseException:
        session.close()
        raise


def placement_lines(net: Any, dep: Any) -> str:
    """Where the modules went: one line per agent, its modules in execution order."""
    lines = []
    for aid, conn in sorted(dep.conns.items(), key=lambda kv: kv[1].info.name):
        mods = [net.modules[m].label for m in net.order if dep.placement[m] == aid]
        lines.append(f"  {conn.info.name} ({conn.address}): {', '.join(mods)}")
    return "\n".join(lines)


def deployment_label(dep: Any) -> str:
    names = sorted({dep.conns[a].info.name for a in dep.conns})
    return f"agents {', '.join(names)}" if len(names) > 1 else f"agent {names[0]}"


# ---------------------------------------------------------------------------- commands
def cmd_agents(args: argparse.Namespace) -> int:
    from app.cli import print_json  # noqa: PLC0415

    infos = find_agents(args, timeout=args.timeout)
    if args.json:
        print_json([i.to_json() for i in infos])
        return 0
    if not infos:
        print("no agents found", file=sys.stderr)
        return 0
    for i in infos:
        gpu = f" gpu {i.gpu}" if i.gpu else ""
        lock = " curve" if i.secure else ""
        print(f"{i.name:<20} {i.address:<24} {','.join(i.backends)}{gpu} {i.cores} cores "
              f"{i.memory / 2**30:.1f} GiB{lock}  {i.id}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from app.cli import print_json  # noqa: PLC0415
    from app.commands import load_network  # noqa: PLC0415

    net = load_network(args, need_weights=False)
    dep = deploy_model(args, net.description, net.get_weights(),
                       choose_placement(args, net.description))
    try:
        result = {"deployment": dep.id, "name": net.description.name,
                  "placement": dep.placement,
                  "agents": [{"id": c.info.id, "name": c.info.name, "address": c.address}
                             for c in dep.conns.values()]}
        if args.json:
            print_json(result)
            return 0
        print(f"deployed {net.description.name} as {dep.id}")
        print(placement_lines(net, dep))
        return 0
    finally:
        dep.session.close()


def cmd_undeploy(args: argparse.Namespace) -> int:
    from agent.client import AgentClient  # noqa: PLC0415
    from agent.session import Session  # noqa: PLC0415
    from app.cli import print_json  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415
    from engine.repository import Repository, resolve_model  # noqa: PLC0415

    name = args.model
    try:
        repo = Repository(args.repository) if args.repository else None
        name = resolve_model(args.model, repo).description.name
    except DianneError:
        pass  # not a network we can read here: a deployed name or a deployment id
    session = Session(load_keys(args))
    removed: dict[str, list[str]] = {}
    try:
        for info in find_agents(args, session):
            client = AgentClient(info.address, session=session)
            gone = client.undeploy(deployment=args.model, name=name)
            if gone:
                removed[info.name] = gone
    finally:
        session.close()
    if args.json:
        print_json({"name": name, "undeployed": removed})
        return 0
    if not removed:
        print(f"{name} is not deployed on any agent found", file=sys.stderr)
        return 1
    for agent_name, deps in sorted(removed.items()):
        print(f"undeployed {name} from {agent_name} ({', '.join(deps)})")
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from agent.keys import generate  # noqa: PLC0415

    written = generate(args.dir, args.name)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{args.dir}: keys already there, nothing written")
    print(f"agents: dianne-agent --keys {args.dir}; clients: --keys {args.dir} "
          f"(or DIANNE_KEYS={args.dir})")
    return 0

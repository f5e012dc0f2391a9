"""``dianne-agent``: the headless agent process.

Binds its request socket (loopback by default), announces itself over zeroconf unless
``--no-discovery``, prints one JSON line on stdout when ready (``{"id", "name", "address",
"events"}``; scripts and tests read it), logs to stderr, and stops cleanly on SIGINT/SIGTERM
(and, with ``--exit-with-parent``, when its stdin ends): it unregisters from zeroconf and
closes its sockets.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from engine.errors import DianneError

log = logging.getLogger("agent")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dianne-agent",
                                description="Headless DIANNE agent: hosts modules of deployed "
                                            "networks and passes tensors over ZeroMQ.")
    p.add_argument("--name", help="display name (default: HOST-<id prefix>)")
    p.add_argument("--id", dest="agent_id", metavar="ID",
                   help="agent id (default: a fresh UUID each start)")
    p.add_argument("--bind", default="tcp://127.0.0.1:0", metavar="tcp://HOST:PORT",
                   help="request socket (default tcp://127.0.0.1:0: loopback, any free port; "
                        "the events socket takes another free port on the same host)")
    p.add_argument("--advertise-interface", metavar="IP",
                   help="announce on this interface only (default: the bound host; all "
                        "interfaces when bound to 0.0.0.0)")
    p.add_argument("--no-discovery", action="store_true", help="do not announce over zeroconf")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"),
                   help="array backend (default: $DIANNE_BACKEND or auto)")
    p.add_argument("--repository", metavar="DIR", help="repository root for training jobs")
    p.add_argument("--keys", metavar="DIR",
                   help="CURVE key folder (dianne keys generate DIR): encrypt, and accept only "
                        "clients listed in DIR/authorized")
    p.add_argument("--max-message-bytes", type=int, default=1 << 30, metavar="N",
                   help="refuse messages larger than this (default 1 GiB)")
    p.add_argument("--max-tensor-elements", type=int, default=1 << 28, metavar="N",
                   help="refuse tensors with more elements than this (default 2^28)")
    p.add_argument("--max-deployments", type=_positive, default=64, metavar="N",
                   help="refuse a new deployment beyond N held at once (default 64)")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when stdin reaches its end: the app that started this agent on a "
                        "pipe went away, however it ended (the desktop app's local agent)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a positive integer. Received: {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        return _run(args)
    except DianneError as exc:
        print(f"dianne-agent: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from agent import protocol as P  # noqa: PLC0415
    from agent.discovery import Announcer  # noqa: PLC0415
    from agent.keys import AGENT, load  # noqa: PLC0415
    from agent.server import Agent  # noqa: PLC0415

    keys = load(args.keys, AGENT) if args.keys else None
    host = args.bind[6:].rsplit(":", 1)[0] if args.bind.startswith("tcp://") else ""
    if keys is None and host in ("*", "0.0.0.0", ""):
        log.warning("binding %s without --keys: anyone on the network can deploy and run "
                    "code paths on this agent; consider 'dianne keys generate DIR' and --keys",
                    args.bind)
    limits = P.Limits(max_message_bytes=args.max_message_bytes,
                      max_tensor_elements=args.max_tensor_elements)
    agent = Agent(name=args.name, bind=args.bind, backend=args.backend,
                  repository=args.repository, keys=keys, limits=limits,
                  agent_id=args.agent_id, max_deployments=args.max_deployments)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if args.exit_with_parent:
        threading.Thread(target=_stop_at_end_of_stdin, args=(stop,), name="parent-watch",
                         daemon=True).start()
    announcer = None
    if not args.no_discovery:
        interface = args.advertise_interface
        if interface is None and host not in ("*", "0.0.0.0"):
            interface = host
        announcer = Announcer(agent.info(), interface).start()
    print(json.dumps({"id": agent.id, "name": agent.name, "address": agent.address,
                      "events": agent.events_address}), flush=True)
    log.info("dianne-agent %s ready on %s", agent.name, agent.address)
    try:
        agent.serve(stop)
    finally:
        agent.close()  # heartbeats stop first, so browsers do not see it come back
        if announcer is not None:
            announcer.close()
    log.info("dianne-agent %s stopped", agent.name)
    return 0


def _stop_at_end_of_stdin(stop: threading.Event) -> None:
    """Read stdin until its end (the writer, the parent, closed it or died), then stop."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    log.info("stdin closed: the parent is gone, stopping")
    stop.set()


if __name__ == "__main__":
    raise SystemExit(main())

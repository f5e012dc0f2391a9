"""The ``dianne`` command: with no arguments the desktop app, with a subcommand the CLI.

Subcommands: ``eval`` (accuracy, top-3, confusion matrix and forward time on a dataset),
``run`` (classify one input file), ``info`` (modules, shapes, parameters), ``examples`` (list or
copy the bundled example networks). Every error the engine raises on bad input becomes one line
on stderr naming the file or module at fault, and a non-zero exit status — never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from engine.errors import DianneError

log = logging.getLogger("dianne")

EXIT_ERROR = 1
EXIT_USAGE = 2


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="network folder (modules.txt + weight files), modules.txt, zip, "
                        "repository network name, or bundled example name (dianne examples)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="weight tag (repeat for several, in order)")
    p.add_argument("--output", metavar="ID", help="Output module (UUID or name) to use")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_agent_options(p)
    p.add_argument("--placement", metavar="FILE",
                   help="run on agents: a JSON file {module uuid: agent id or name}, or "
                        "\"auto\": profile the agents, measure the links and plan (deploy, "
                        "run, undeploy)")
    p.add_argument("--on", metavar="AGENT", help="run the whole network on this agent")
    from app.autoplace_cli import add_auto_options  # noqa: PLC0415  (light: no numpy, zmq)

    add_auto_options(p)


def add_agent_options(p: argparse.ArgumentParser) -> None:
    """How a command finds agents: zeroconf by default, or explicit addresses."""
    p.add_argument("--agent", action="append", default=[], metavar="ADDR",
                   help="agent address tcp://HOST:PORT (repeatable; default: $DIANNE_AGENTS, "
                        "else zeroconf discovery)")
    p.add_argument("--interface", metavar="IP",
                   help="browse zeroconf on this interface only (e.g. 127.0.0.1)")
    p.add_argument("--keys", metavar="DIR",
                   help="CURVE key folder for encrypted, authenticated agents (default: "
                        "$DIANNE_KEYS)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dianne",
        description="DIANNE: modular neural networks. Without a subcommand the desktop app "
                    "opens.")
    parser.add_argument("--repository", metavar="DIR",
                        help="repository root (default: $DIANNE_REPOSITORY or the user data "
                             "folder)")
    parser.add_argument("--backend", choices=("auto", "numpy", "cupy"),
                        help="array backend (default: $DIANNE_BACKEND or auto)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    _add_app_options(parser.add_argument_group(
        "desktop app", "dianne [--screenshot FILE.png [--tab TAB]] [MODEL]"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("eval", help="evaluate a network on a dataset")
    _add_model_options(p)
    p.add_argument("--dataset", required=True, metavar="SPEC",
                   help="'mnist' (bundled) or 'mnist:DIR'")
    p.add_argument("--range", metavar="A,B", help="half-open sample range [A,B)")
    p.add_argument("--labels", metavar="L1,L2,...", help="keep only these labels")
    p.add_argument("--other", action="store_true", help="with --labels: add an 'other' class")
    p.add_argument("--batch-size", type=int, default=1, metavar="N",
                   help="samples per forward (default 1: one sample at a time)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("run", help="classify one input (.png/.jpg/.npy)")
    _add_model_options(p)
    p.add_argument("--input", required=True, metavar="FILE", help=".png, .jpg or .npy file")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to show")

    p = sub.add_parser("info", help="modules, shapes and parameter counts of a network")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--input-shape", metavar="C,H,W",
                   help="sample shape when the Input has no dims property")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("examples", help="list the bundled example networks, or copy one")
    p.add_argument("action", nargs="?", choices=("list", "copy"), default="list")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("dest", nargs="?", metavar="DIR")
    p.add_argument("--json", action="store_true")

    for module in _command_modules():
        module.register(sub)
    return parser


def _command_modules() -> list:
    """Further subcommands: every module in ``app/cmds/`` with a ``register(subparsers)``.

    Each such module adds its parser(s) and sets ``handler=<function(args) -> int>`` as a
    default; it keeps heavy imports inside the handler so that ``dianne --help`` stays fast.
    """
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    from app import cmds  # noqa: PLC0415

    names = sorted(m.name for m in pkgutil.iter_modules(cmds.__path__) if not m.ispkg)
    return [importlib.import_module(f"app.cmds.{name}") for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if _wants_app(parser, argv):
        args = build_app_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        return _open_app(args)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        return _open_app(args)
    from app.autoplace_cli import misplaced_auto_options  # noqa: PLC0415  (light)

    misplaced = misplaced_auto_options(args)
    if misplaced:
        parser.error(f"{args.command}: {misplaced}")
    handler = getattr(args, "handler", None)
    if handler is None:
        from app import commands  # noqa: PLC0415  (keeps `dianne --help` fast)

        handler = getattr(commands, f"cmd_{args.command}")
    return _guarded(f"dianne {args.command}", handler, args)


def _guarded(prefix: str, fn: Any, args: argparse.Namespace) -> int:
    """``fn(args)``; a DianneError or OSError becomes one line on stderr and exit status 1."""
    try:
        return fn(args)
    except DianneError as exc:
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"{prefix}: error:{name} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"dianne {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# ------------------------------------------------------- the desktop app (no subcommand) ---
_APP_VALUE_OPTIONS = ("--repository", "--backend", "--screenshot", "--tab")
TABS = ("build", "deploy", "learn", "run")


def _add_app_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--screenshot", metavar="FILE.png",
                   help="desktop app: open the window (offscreen without a display), save it "
                        "as a PNG and exit")
    p.add_argument("--tab", choices=TABS, default="build",
                   help="with --screenshot: the tab to show (default build)")


def build_app_parser() -> argparse.ArgumentParser:
    """``dianne [--screenshot FILE.png [--tab TAB]] [MODEL]``: the desktop app."""
    p = argparse.ArgumentParser(prog="dianne", description="Open the DIANNE desktop app.")
    p.add_argument("--repository", metavar="DIR", help="repository root")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"), help="array backend")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    _add_app_options(p)
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="network to open: folder, modules.txt, repository network name or "
                        "bundled example name (dianne examples)")
    return p


def _wants_app(parser: argparse.ArgumentParser, argv: list[str]) -> bool:
    """No subcommand among the arguments (a first plain word that is not one is MODEL)."""
    if any(a in ("-h", "--help") for a in argv):
        return False
    commands = set()
    for action in parser._actions:  # noqa: SLF001 (argparse has no public accessor)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            commands.update(action.choices)
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _APP_VALUE_OPTIONS:
            skip = True
        elif not token.startswith("-"):
            return token not in commands
    return True


def _open_app(args: argparse.Namespace) -> int:
    """The desktop app (Qt is imported only now: ``dianne --help`` stays fast)."""
    try:
        from app.gui_app import run  # noqa: PLC0415
    except ImportError as exc:
        print(f"dianne: the desktop app needs PySide6 and NodeGraphQt: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return _guarded("dianne", run, args)


def print_json(obj: object) -> None:
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")

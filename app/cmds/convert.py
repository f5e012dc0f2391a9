"""``dianne convert``: ONNX <-> DIANNE network folders (spec 8.2).

``dianne convert MODEL.onnx OUTDIR`` imports: OUTDIR gets ``modules.txt`` and one untagged
weight file per module with parameters (as the original's ``fromOnnx`` stored them in the
network folder). ``dianne convert MODEL OUT.onnx`` exports: MODEL is a network folder,
``modules.txt``, zip or repository network name, with its weights (``--tag``). The direction
follows the file names: a destination ending in ``.onnx`` exports, a source that is an ONNX
file (``.onnx``/``.pb``) imports. ``--json`` prints one object with the keys ``direction``,
``source``, ``destination``, ``name``, ``modules``, ``parameters``, ``inputs``, ``outputs``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ONNX_SUFFIXES = (".onnx", ".pb")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="ONNX import (MODEL.onnx OUTDIR) and export "
                                       "(MODEL OUT.onnx)")
    p.add_argument("source", metavar="SOURCE",
                   help="an ONNX file to import, or a network (folder, modules.txt, zip or "
                        "repository name) to export")
    p.add_argument("destination", metavar="DEST",
                   help="a new network folder (import) or an .onnx file (export)")
    p.add_argument("--name", help="network name of an import (default: the folder name)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="weight tag of the exported network (repeat for several, in order)")
    p.add_argument("--input-shape", metavar="D0,D1,...",
                   help="export: one sample's shape when the Input has no dims property")
    p.add_argument("--random-weights", action="store_true",
                   help="export even when no weight files exist (seeded initialisation)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import DianneError

    src, dst = Path(args.source), Path(args.destination)
    if dst.suffix.lower() == ".onnx":
        result = _export(args, dst)
    elif src.suffix.lower() in ONNX_SUFFIXES and src.is_file():
        result = _import(args, src, dst)
    else:
        raise DianneError(f"convert needs an ONNX file and a folder (import) or a network and "
                          f"an .onnx file (export). Received: {args.source} {args.destination}")
    if args.json:
        from app.cli import print_json

        print_json(result)
    else:
        verb = "imported" if result["direction"] == "import" else "exported"
        print(f"{verb} {result['name']}: {result['modules']} modules, {result['parameters']} "
              f"parameters -> {result['destination']}")
    return 0


def _summary(direction: str, src: Path, dst: Path, net: object) -> dict:
    return {"direction": direction, "source": str(src), "destination": str(dst),
            "name": net.description.name, "modules": len(net.modules),
            "parameters": net.parameter_count(),
            "inputs": [net.modules[m].name for m in net.inputs],
            "outputs": [net.modules[m].name for m in net.outputs]}


def _import(args: argparse.Namespace, src: Path, dst: Path) -> dict:
    from engine.description import write_network
    from engine.errors import DianneError
    from engine.graph import Network
    from engine.onnx import from_onnx
    from engine.weights import weight_filename, write_weights

    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DianneError(f"{dst}: exists and is not an empty folder; choose another. "
                          f"Received: {dst}")
    desc, weights = from_onnx(src, name=args.name or dst.name)
    net = Network(desc, backend="numpy")
    net.set_weights(weights, source=str(src))  # checks every vector against its module
    dst.mkdir(parents=True, exist_ok=True)
    write_network(desc, dst)
    for mid, flat in weights.items():
        write_weights(dst / weight_filename(mid), flat)
    return _summary("import", src, dst, net)


def _export(args: argparse.Namespace, dst: Path) -> dict:
    from app.commands import load_network, parse_input_shape
    from engine import composite
    from engine.fileio import atomic_write
    from engine.onnx import to_onnx
    from engine.repository import Repository

    repo = Repository(args.repository) if args.repository else Repository()
    composite.add_repository(repo.root)  # the repository's own composite types
    ns = argparse.Namespace(model=args.source, repository=args.repository,
                            backend="numpy", tag=args.tag)
    net = load_network(ns, need_weights=not args.random_weights)
    model = to_onnx(net.eval(), parse_input_shape(args.input_shape))
    atomic_write(dst, model.SerializeToString())
    return _summary("export", Path(args.source), dst, net)

"""The CLI subcommands behind ``dianne eval|run|info|examples`` (Qt-free app core).

Each ``cmd_*`` takes the parsed arguments, prints its result (human text, or one JSON object
with ``--json``) and returns the exit status; bad input surfaces as a ``DianneError`` that
``app.cli.main`` turns into one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from app.cli import print_json
from app.examples import resolve_model
from engine.errors import DianneError
from engine.graph import Network
from engine.repository import Repository, RepositoryError


# ---------------------------------------------------------------------------- loading a model
def load_network(args: argparse.Namespace, need_weights: bool = True) -> Network:
    """Resolve MODEL (:func:`app.examples.locate_model`: a path, a repository network or a
    bundled example), build the network and load its weights (``--tag`` order kept). The
    repository's composite types and networks can be used as module types; a composite without
    its own weight file gets its parts' weights (:func:`engine.composite.load_parts`)."""
    from engine import composite  # noqa: PLC0415

    repo = Repository(args.repository) if getattr(args, "repository", None) else Repository()
    composite.add_repository(repo.root)
    source = resolve_model(args.model, repo)
    net = Network(source.description, backend=getattr(args, "backend", None))
    sizes = net.parameter_sizes()
    if not sizes:
        return net
    tags = tuple(getattr(args, "tag", ()) or ())
    try:
        weights = source.load_weights(tags=tags, sizes=sizes)
    except RepositoryError as exc:  # no file at all: the parts of composites may have some
        weights, nothing = {}, exc
    except DianneError:
        if need_weights:
            raise
        weights, nothing = {}, None
    else:
        nothing = None
    if weights:
        net.set_weights(weights, source=str(args.model))
    filled = composite.load_parts(net, source, loaded=weights)
    if need_weights and not weights and not filled:
        tag_text = f" with tags {'-'.join(tags)}" if tags else ""
        raise DianneError(f"{args.model}: no weight files found{tag_text} for any of its "
                          f"{len(sizes)} modules with parameters") from nothing
    missing = [net.modules[m].label for m in sizes if m not in weights and m not in filled]
    if missing and need_weights:
        print(f"warning: no weights for {', '.join(missing)}; they keep their random "
              f"initialisation", file=sys.stderr)
    return net


def pick_output(net: Network, key: str | None) -> str:
    return net._resolve(key, "Output") if key else net.single_output()


def input_shape(net: Network) -> tuple[int, ...] | None:
    """One sample's shape for the (single) Input: its ``dims``, else guessed from its successor.

    A Linear with N inputs after the Input takes a square grey image when N is a square
    (784 -> 1x28x28) or a square RGB image when N/3 is; otherwise the shape is unknown.
    """
    inp = net.modules[net.inputs[0]]
    dims = inp.cfg.get("dims")
    if dims:
        return tuple(dims)
    for nxt in net.succ[inp.id]:
        mod = net.modules[nxt]
        if mod.type_name == "Linear":
            n = mod.cfg["input"]
            for channels in (1, 3):
                side = math.isqrt(n // channels)
                if n % channels == 0 and side * side * channels == n:
                    return (channels, side, side)
            return (n,)
    return None


@contextlib.contextmanager
def executor(args: argparse.Namespace, net: Network, oid: str
             ) -> Iterator[tuple[Callable[[np.ndarray], np.ndarray], str]]:
    """(forward function, where it runs): the local engine, or the agents of ``--placement
    FILE`` / ``--placement auto`` / ``--on AGENT`` (deployed here, undeployed when done).

    ``--placement`` is read as ``dianne deploy`` reads it
    (:func:`app.cmds.agents.choose_placement`); with ``auto`` the plan and then where each module
    went are printed on stderr, so that stdout keeps the command's own output (``--json``
    included)."""
    placement, on = getattr(args, "placement", None), getattr(args, "on", None)
    if not placement and not on:
        if getattr(args, "agent", None) or getattr(args, "interface", None):
            raise DianneError("--agent/--interface choose where agents are found; add "
                              "--placement FILE or --on AGENT to run there")
        yield (lambda x: net.backend.to_host(net.forward(x, outputs=oid)),
               f"backend {net.backend.name}")
        return
    if placement and on:
        raise DianneError(f"give --placement or --on, not both. Received: --placement "
                          f"{placement} --on {on}")
    from app.cmds.agents import (  # noqa: PLC0415
        choose_placement,
        deploy_model,
        deployment_label,
        placement_lines,
    )

    dep = deploy_model(args, net.description, net.get_weights(),
                       choose_placement(args, net.description) if placement else None, on=on)
    try:
        if placement == "auto":
            print(f"placed {net.description.name} on {deployment_label(dep)}:\n"
                  f"{placement_lines(net, dep)}", file=sys.stderr)
        yield (lambda x: dep.forward(x, outputs=oid)), deployment_label(dep)
    finally:
        with contextlib.suppress(DianneError):  # an agent that is gone keeps nothing
            dep.undeploy()
        dep.session.close()


# ---------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    from engine.datasets.spec import open_dataset, parse_labels, parse_range  # noqa: PLC0415
    from engine.evaluation import evaluate  # noqa: PLC0415

    net = load_network(args)
    oid = pick_output(net, args.output)
    dataset = open_dataset(
        args.dataset,
        range_=parse_range(args.range) if args.range else None,
        labels=parse_labels(args.labels) if args.labels else None,
        other=args.other,
    )
    if args.batch_size < 1:
        raise DianneError(f"--batch-size must be at least 1. Received: {args.batch_size}")
    out_labels = net.labels(oid)
    if out_labels and len(out_labels) != len(dataset.labels):
        raise DianneError(f"{args.model}: Output has {len(out_labels)} labels "
                          f"{out_labels} but dataset {args.dataset} has {len(dataset.labels)} "
                          f"{dataset.labels}")
    net.eval()
    bar = _progress(len(dataset), disable=args.no_progress)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.n = done
            bar.refresh() if done == total or done % 200 == 0 else None

    with executor(args, net, oid) as (forward, where):
        result = evaluate(forward, dataset, batch_size=args.batch_size, progress=progress)
    if bar is not None:
        bar.close()
    if args.json:
        print_json(result.to_json())
        return 0
    print(f"network   {net.description.name}  (output {net.modules[oid].label})")
    print(f"dataset   {args.dataset}  {result.samples} samples")
    print(f"accuracy  {result.accuracy * 100:.2f} %")
    print(f"top-3     {result.top3 * 100:.2f} %")
    print(f"forward   {result.forward_ms:.4f} ms per sample ({where})")
    print("confusion matrix [target][predicted]:")
    print(format_confusion(result.confusion, list(dataset.labels)))
    return 0


def _progress(total: int, disable: bool) -> Any:
    if disable:
        return None
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="sample", file=sys.stderr, disable=None, leave=False)


def format_confusion(matrix: list[list[int]], labels: list[str]) -> str:
    width = max([len(str(v)) for row in matrix for v in row] + [len(lb) for lb in labels] + [3])
    head = " " * (width + 1) + " ".join(lb.rjust(width) for lb in labels)
    rows = [head]
    for lb, row in zip(labels, matrix, strict=False):
        rows.append(lb.rjust(width) + " " + " ".join(str(v).rjust(width) for v in row))
    return "\n".join(rows)


# ---------------------------------------------------------------------------- run
def load_input(path: str, shape: tuple[int, ...] | None, exact: bool = False) -> np.ndarray:
    """A ``.npy`` file as is, or an image converted to ``shape``.

    With ``exact`` (the Input declares its ``dims``) a ``.npy`` array must have that shape;
    when the shape was only guessed from the first layer, its size must match.
    """
    file = Path(path)
    if not file.is_file():
        raise DianneError(f"{path}: no such input file")
    if file.suffix.lower() == ".npy":
        try:
            arr = np.load(file, allow_pickle=False)
        except ValueError as exc:
            raise DianneError(f"{path}: not a numeric .npy array: {exc}") from None
        wrong = arr.shape != shape if exact else arr.size != int(np.prod(shape or arr.shape))
        if shape is not None and wrong:
            raise DianneError(f"{path}: the network's Input takes shape {shape}. "
                              f"Received: {arr.shape}")
        return np.asarray(arr, dtype=np.float32).reshape(shape) if shape else arr
    return load_image(file, shape)


def load_image(file: Path, shape: tuple[int, ...] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    try:
        img = Image.open(file)
        img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise DianneError(f"{file}: not a readable image: {exc}") from None
    channels, size = 1, img.size
    if shape is not None and len(shape) == 3:
        channels, size = shape[0], (shape[2], shape[1])
    elif shape is not None and len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side != shape[0]:
            raise DianneError(f"{file}: cannot turn an image into the Input's shape {shape}")
        size = (side, side)
    if channels not in (1, 3):
        raise DianneError(f"{file}: images give 1 or 3 channels; the Input takes {channels}")
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[None, :, :] if channels == 1 else arr.transpose(2, 0, 1)
    return arr.reshape(shape) if shape is not None else np.ascontiguousarray(arr)


def to_probabilities(out: np.ndarray) -> np.ndarray:
    """Log-probabilities are exponentiated, a distribution kept, scores in [0,1] normalised,
    anything else goes through a softmax."""
    out = np.asarray(out, dtype=np.float64).ravel()
    if out.size == 0:
        return out
    if out.max() <= 0:
        return np.exp(out)
    if out.min() >= 0 and out.max() <= 1:
        total = out.sum()
        return out / total if total > 0 else out
    e = np.exp(out - out.max())
    return e / e.sum()


def cmd_run(args: argparse.Namespace) -> int:
    net = load_network(args)
    oid = pick_output(net, args.output)
    declared = bool(net.modules[net.inputs[0]].cfg.get("dims"))
    x = load_input(args.input, input_shape(net), exact=declared)
    net.eval()
    with executor(args, net, oid) as (forward, _):
        start = time.perf_counter()
        out = forward(x)
        forward_ms = (time.perf_counter() - start) * 1000.0
    labels = net.labels(oid)
    flat = np.asarray(out, dtype=np.float64).ravel()
    if not labels:
        labels = [str(i) for i in range(flat.size)]
    probs = to_probabilities(flat)
    order = np.argsort(-probs, kind="stable")[: max(1, args.top)]
    top = [[labels[i] if i < len(labels) else str(i), float(probs[i])] for i in order]
    if args.json:
        print_json({"output": [float(v) for v in flat], "labels": labels, "top": top,
                    "forward_ms": forward_ms})
        return 0
    print(f"{net.description.name}: {top[0][0]}  (p = {top[0][1]:.4f})")
    for label, p in top:
        print(f"  {label:>10}  {p:7.4f}  {'#' * int(round(p * 40))}")
    print(f"forward {forward_ms:.3f} ms")
    return 0


# ---------------------------------------------------------------------------- info
def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``--input-shape 1,28,28`` as a tuple (None when not given); a one-line error else."""
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise DianneError(f"--input-shape takes integers like 1,28,28. Received: {text!r}"
                          ) from None


def cmd_info(args: argparse.Namespace) -> int:
    from engine.shapes import describe, infer_shapes  # noqa: PLC0415

    repo = Repository(args.repository) if args.repository else None
    source = resolve_model(args.model, repo)
    shapes = infer_shapes(source.description, parse_input_shape(args.input_shape))
    if args.json:
        print_json({
            "name": source.description.name, "params": shapes.params, "macs": shapes.macs,
            "modules": [{"id": m.id, "type": m.type, "name": m.name,
                         "in_shapes": [list(s) for s in m.in_shapes],
                         "out_shape": (None if m.out_shape is None else
                                       [list(s) for s in m.out_shape]
                                       if isinstance(m.out_shape, list) else list(m.out_shape)),
                         "params": m.params, "macs": m.macs, "error": m.error}
                        for m in shapes.modules.values()],
        })
        return 0
    print(f"{source.description.name}: {len(shapes.modules)} modules, {shapes.params} "
          f"parameters, {shapes.macs} multiply-adds per sample")
    for m in shapes.modules.values():
        print("  " + describe(m))
    error = shapes.first_error()
    if error:  # the one stderr line naming the file and the module at fault
        raise DianneError(f"{source.description.source or source.description.name}: {error}")
    return 0


# ---------------------------------------------------------------------------- examples
def cmd_examples(args: argparse.Namespace) -> int:
    from app.examples import copy_example, list_examples  # noqa: PLC0415

    if args.action == "copy":
        if not args.name or not args.dest:
            raise DianneError("usage: dianne examples copy NAME DIR")
        dest = copy_example(args.name, args.dest)
        print(f"copied example {args.name} to {dest}")
        return 0
    examples = list_examples()
    if args.json:
        print_json([{"name": e.name, "description": e.description, "modules": e.modules,
                     "weights": e.has_weights} for e in examples])
        return 0
    for e in examples:
        weights = "with weights" if e.has_weights else "untrained"
        print(f"{e.name:<16} {e.modules:>3} modules, {weights:<12} {e.description}")
    return 0

"""``dianne biglittle create|sweep|run``: Big-Little networks from the command line.

``create BIG --priority 0,1,2 [--little mlp|cnn|MODEL] --dataset SPEC`` trains a little network
on the priority classes + "other" and writes one Big-Little network (engine.biglittle) with the
big network's weights and the little one's. ``sweep MODEL --dataset SPEC [--link 20ms,10Mbit]``
runs both parts on every sample once and prints/saves, per threshold, the fraction forwarded,
accuracy, priority precision/recall, latency and bytes sent (CSV + PNG). ``run MODEL`` applies
the policy to one input or a dataset and says which part answered. With ``--agent`` the little
part runs on the device agent and the big part on the server agent (see app/biglittle_agents.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli import add_agent_options, print_json
from app.sweep_io import add_dataset_options, add_training_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("biglittle", help="Big-Little networks: create, sweep the threshold, run")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    c = actions.add_parser("create", help="train a little network for BIG's priority classes "
                                          "and save the Big-Little network")
    c.add_argument("big", metavar="BIG", help="the trained big network (folder, zip or name)")
    c.add_argument("--priority", required=True, metavar="L1,L2,...",
                   help="priority classes (labels of BIG's Output), e.g. 0,1,2")
    c.add_argument("--little", default="cnn", metavar="mlp|cnn|MODEL",
                   help="the little network: a built-in (mlp: 784-12-K, cnn: ~5k parameters) "
                        "or a network whose Output has K+1 classes (default cnn)")
    add_dataset_options(c)
    c.add_argument("--threshold", type=float, default=0.9, metavar="T",
                   help="confidence threshold stored in the policy (0.9)")
    c.add_argument("--name", metavar="NAME", help="network name (default BIG-biglittle)")
    c.add_argument("--out", metavar="DIR",
                   help="write the network folder here (default: into the repository)")
    c.add_argument("--big-epochs", type=float, default=0, metavar="N",
                   help="first train BIG from scratch (seeded) for N epochs on all its classes "
                        "(default 0: BIG is trained already)")
    add_training_options(c)
    _common(c, model=False)
    c.set_defaults(handler=_create)

    s = actions.add_parser("sweep", help="sweep the threshold: forwarded, accuracy, priority "
                                         "precision/recall, latency, bytes (CSV + PNG)")
    _common(s)
    add_dataset_options(s)
    s.add_argument("--thresholds", metavar="T1,T2,...", help="thresholds to evaluate")
    s.add_argument("--csv", metavar="FILE", help="CSV file (default NAME-sweep.csv)")
    s.add_argument("--png", metavar="FILE", help="PNG plot (default NAME-sweep.png)")
    s.set_defaults(handler=_sweep)

    r = actions.add_parser("run", help="classify an input file or a dataset with the policy")
    _common(r)
    add_dataset_options(r, required=False)
    r.add_argument("--input", metavar="FILE", help=".png, .jpg or .npy file")
    r.add_argument("--threshold", type=float, metavar="T", help="override the stored threshold")
    r.add_argument("--big-timeout", type=_duration, metavar="DELAY",
                   help="with agents: how long a forwarded sample may wait for the big part "
                        "beyond the link's latency before the little network answers it "
                        "(marked fallback), e.g. 500ms (the default) or 1s")
    r.set_defaults(handler=_run)


def _common(p: argparse.ArgumentParser, model: bool = True) -> None:
    if model:
        p.add_argument("model", metavar="MODEL", help="Big-Little network (folder, zip or name)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="weight tag")
    p.add_argument("--link", metavar="DELAY[,RATE]",
                   help="emulated device-server link, e.g. 50ms or 20ms,10Mbit (each direction)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_agent_options(p)
    p.add_argument("--device", metavar="AGENT", help="agent (id, name or address) for the little "
                                                     "part (default: the first agent)")
    p.add_argument("--server", metavar="AGENT", help="agent for the big part (default: the last "
                                                     "agent)")


def _duration(text: str) -> float:
    """``500ms``, ``0.5s``, ``200us`` -> seconds."""
    import re  # noqa: PLC0415

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(us|ms|s)\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"a duration such as 500ms or 1s. Received: {text!r}")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]


# ---------------------------------------------------------------------------- loading
def _load(args: argparse.Namespace) -> tuple[Any, Any, dict]:
    """(description, Parts, weights) of MODEL."""
    from app.commands import load_network  # noqa: PLC0415
    from engine.biglittle import split  # noqa: PLC0415

    net = load_network(args)
    return net.description, split(net.description), net.get_weights()


def _link(args: argparse.Namespace) -> Any:
    from engine.link import parse_link  # noqa: PLC0415

    return parse_link(args.link) if args.link else None


def _runner(args: argparse.Namespace, parts: Any, weights: dict, emulate: bool) -> Any:
    """(runner, modelled link, cleanup): agents when asked for, else in process.

    In process, ``emulate`` sleeps for the link on each send (``run``); otherwise the link is
    added to the measured times (``sweep``), which gives the same figures without the wait.
    """
    link = _link(args)
    if args.agent or args.device or args.server:
        from app.biglittle_agents import AgentRunner  # noqa: PLC0415

        runner = AgentRunner.open(args, parts, weights, link)
        return runner, None, runner.close
    from engine.biglittle import LocalRunner  # noqa: PLC0415

    runner = LocalRunner(parts, weights, backend=args.backend, link=link if emulate else None)
    return runner, (None if emulate else link), (lambda: None)


# ---------------------------------------------------------------------------- sweep
def _sweep(args: argparse.Namespace) -> int:
    from app.charts import Panel, Series, line_chart  # noqa: PLC0415
    from app.sweep_io import (  # noqa: PLC0415
        open_eval_dataset,
        percent,
        print_table,
        progress_bar,
        write_csv,
    )
    from engine.biglittle_sweep import (  # noqa: PLC0415
        DEFAULT_THRESHOLDS,
        ROW_KEYS,
        measure,
        sweep,
    )
    from engine.errors import DianneError  # noqa: PLC0415

    desc, parts, weights = _load(args)
    thresholds = DEFAULT_THRESHOLDS
    if args.thresholds:
        try:
            thresholds = tuple(float(t) for t in args.thresholds.split(",") if t.strip())
        except ValueError:
            raise DianneError(f"--thresholds takes numbers like 0.5,0.9,0.99. "
                              f"Received: {args.thresholds!r}") from None
    dataset, targets = open_eval_dataset(args, parts.big_labels, f"{desc.name} (big Output)")
    runner, link, close = _runner(args, parts, weights, emulate=False)
    update, done = progress_bar(len(dataset), args.no_progress)
    try:
        m = measure(runner, parts, dataset.inputs(range(len(dataset))), targets, link, update)
    finally:
        done()
        close()
    rows = sweep(m, thresholds)
    csv_path = Path(args.csv or f"{desc.name}-sweep.csv")
    png_path = Path(args.png or f"{desc.name}-sweep.png")
    write_csv(csv_path, rows, ROW_KEYS)
    where = "agents" if (args.agent or args.device) else "in process"
    line_chart(png_path, f"Big-Little {desc.name}: {len(dataset)} samples of {args.dataset}, "
               f"link {args.link or 'none'} ({where})", list(range(len(rows))), [
                   Panel([Series("accuracy", [r["accuracy"] for r in rows]),
                          Series("priority recall", [r["priority_recall"] for r in rows]),
                          Series("priority precision", [r["priority_precision"] for r in rows]),
                          Series("big network alone", [r["big_accuracy"] for r in rows],
                                 dashed=True, points=False)], "accuracy", zero=False),
                   Panel([Series("forwarded", [r["forwarded"] for r in rows]),
                          Series("latency mean", [r["latency_ms_mean"] for r in rows],
                                 right=True),
                          Series("latency p99", [r["latency_ms_p99"] for r in rows], right=True),
                          Series("always big", [r["always_big_latency_ms_mean"] for r in rows],
                                 right=True, dashed=True, points=False)],
                         "fraction forwarded", "latency (ms)", left_range=(0.0, 1.0))],
               "threshold", x_labels=[f"{r['threshold']:g}" for r in rows])
    if args.json:
        print_json(rows)
        return 0
    print(f"{desc.name}: priority {', '.join(parts.policy.priority)}, {len(dataset)} samples, "
          f"link {args.link or 'none'} ({where}); big alone: accuracy "
          f"{percent(rows[0]['big_accuracy'])} %, latency "
          f"{rows[0]['always_big_latency_ms_mean']:.2f} ms")
    print_table(["threshold", "fwd %", "acc %", "prio rec %", "prio prec %", "lat ms",
                 "p99 ms", "bytes"],
                [[f"{r['threshold']:g}", percent(r["forwarded"]), percent(r["accuracy"]),
                  percent(r["priority_recall"]), percent(r["priority_precision"]),
                  f"{r['latency_ms_mean']:.2f}", f"{r['latency_ms_p99']:.2f}",
                  str(r["bytes_sent"])] for r in rows])
    print(f"wrote {csv_path} and {png_path}")
    return 0


# ---------------------------------------------------------------------------- run
def _run(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from app.commands import load_input  # noqa: PLC0415
    from app.sweep_io import open_eval_dataset, percent, progress_bar  # noqa: PLC0415
    from engine.biglittle import BigLittle  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    if bool(args.input) == bool(args.dataset):
        raise DianneError("give --input FILE or --dataset SPEC (one of them)")
    desc, parts, weights = _load(args)
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise DianneError(f"--threshold must lie in [0, 1]. Received: {args.threshold}")
    runner, _, close = _runner(args, parts, weights, emulate=True)
    bl = BigLittle(parts, runner)
    try:
        if args.input:
            inp = desc.modules[desc.inputs()[0].id].properties.get("dims")
            shape = tuple(int(v) for v in inp.split(",")) if inp else None
            answer = bl.classify(load_input(args.input, shape, exact=bool(inp)), args.threshold)
            if args.json:
                print_json(answer.to_json())
            else:
                print(f"{desc.name}: {answer.label} (p = {answer.probability:.4f}), answered by "
                      f"the {answer.answered_by} network in {answer.latency_ms:.2f} ms"
                      + (f" (fallback: the big part is unreachable, {answer.reason})"
                         if answer.fallback else "")
                      + (f" (the device agent is gone: the little part ran on "
                         f"{answer.little_on})" if answer.little_on else ""))
            return 0
        dataset, targets = open_eval_dataset(args, parts.big_labels, desc.name)
        update, done = progress_bar(len(dataset), args.no_progress)
        answers = []
        for i in range(len(dataset)):
            answers.append(bl.classify(dataset.input(i), args.threshold))
            update(i + 1, len(dataset))
        done()
    finally:
        close()
    lat = np.array([a.latency_ms for a in answers])
    summary = {
        "samples": len(answers),
        "accuracy": float(np.mean([parts.big_labels[t] == a.label
                                   for a, t in zip(answers, targets, strict=True)])),
        "forwarded": float(np.mean([a.answered_by == "big" for a in answers])),
        "latency_ms_mean": float(lat.mean()), "latency_ms_p99": float(np.percentile(lat, 99)),
        "bytes_sent": int(sum(a.bytes_sent for a in answers)),
        "fallbacks": int(sum(a.fallback for a in answers)),
        "little_on_server": int(sum(a.little_on is not None for a in answers)),
        "answers": [a.to_json() for a in answers],
    }
    if args.json:
        print_json(summary)
        return 0
    print(f"{desc.name}: {summary['samples']} samples, accuracy {percent(summary['accuracy'])} "
          f"%, forwarded {percent(summary['forwarded'])} %, latency mean "
          f"{summary['latency_ms_mean']:.2f} ms, p99 {summary['latency_ms_p99']:.2f} ms, "
          f"{summary['bytes_sent']} bytes sent"
          + (f"; {summary['fallbacks']} answered by the little network alone (fallback: the "
             f"big part was unreachable)" if summary["fallbacks"] else "")
          + (f"; {summary['little_on_server']} with the little part on the server (the device "
             f"agent was gone)" if summary["little_on_server"] else ""))
    return 0


# ---------------------------------------------------------------------------- create
def little_network(kind: str, name: str, dims: tuple[int, ...], labels: list[str],
                   repository: Any = None) -> tuple[Any, dict]:
    """The little network's description (and weights when MODEL has some) for ``--little``."""
    import numpy as np  # noqa: PLC0415

    from engine.builder import NetworkBuilder  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415
    from engine.modules.io import format_labels  # noqa: PLC0415
    from engine.repository import Repository, resolve_model  # noqa: PLC0415
    from engine.shapes import infer_shapes  # noqa: PLC0415
    from engine.subnet import derived_id  # noqa: PLC0415

    if kind not in ("mlp", "cnn"):
        source = resolve_model(kind, Repository(repository) if repository else None)
        desc = source.description.copy()
        outs = desc.outputs()
        if len(desc.inputs()) != 1 or len(outs) != 1:
            raise DianneError(f"--little {kind}: the little network needs one Input and one "
                              f"Output. Received: {len(desc.inputs())} and {len(outs)}")
        desc.modules[outs[0].id].properties["labels"] = format_labels(labels)
        try:
            weights = source.load_weights()
        except DianneError:
            weights = {}
        return desc, weights
    b = NetworkBuilder(f"{name}-little")
    ids = iter(derived_id(name, "little", str(k)) for k in range(100))
    layers: list[tuple[str, dict]] = []
    if kind == "cnn":
        layers = [("Convolution", {"noInputPlanes": dims[0], "noOutputPlanes": 4,
                                   "kernelWidth": 5, "kernelHeight": 5}), ("ReLU", {}),
                  ("MaxPooling", {"width": 2, "height": 2}),
                  ("Convolution", {"noInputPlanes": 4, "noOutputPlanes": 8,
                                   "kernelWidth": 5, "kernelHeight": 5}), ("ReLU", {}),
                  ("MaxPooling", {"width": 2, "height": 2})]
    chain = [b.add("Input", id=next(ids), dims=",".join(map(str, dims)))]
    chain += [b.add(t, id=next(ids), **props) for t, props in layers]
    b.chain(*chain)
    shape = infer_shapes(b.build())[chain[-1]].out_shape
    if shape is None:
        raise DianneError(f"--little {kind}: the input {dims} is too small for it")
    flat = int(np.prod(shape))
    hidden = 32 if kind == "cnn" else 12
    tail = [b.add("Linear", id=next(ids), input=flat, output=hidden), b.add("ReLU", id=next(ids)),
            b.add("Linear", id=next(ids), input=hidden, output=len(labels)),
            b.add("LogSoftmax", id=next(ids)),
            b.add("Output", id=next(ids), labels=format_labels(labels))]
    b.chain(chain[-1], *tail)
    return b.build(), {}


def _create(args: argparse.Namespace) -> int:
    from app.commands import load_network  # noqa: PLC0415
    from app.sweep_io import train_output  # noqa: PLC0415
    from engine.biglittle import OTHER, combine  # noqa: PLC0415
    from engine.datasets.spec import open_dataset, parse_labels, parse_range  # noqa: PLC0415
    from engine.description import write_network  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415
    from engine.repository import Repository  # noqa: PLC0415
    from engine.subnet import derived_id, renamed  # noqa: PLC0415
    from engine.weights import weight_filename, write_weights  # noqa: PLC0415

    args.model = args.big
    big = load_network(args, need_weights=args.big_epochs <= 0)
    if len(big.inputs) != 1 or len(big.outputs) != 1:
        raise DianneError(f"{args.big}: the big network needs one Input and one Output. "
                          f"Received: {len(big.inputs)} and {len(big.outputs)}")
    big_labels = big.labels()
    priority = parse_labels(args.priority)
    missing = [p for p in priority if p not in big_labels]
    if missing:
        raise DianneError(f"--priority: {missing} are not labels of {args.big} "
                          f"({big_labels}). Received: {args.priority}")
    dims = big.modules[big.inputs[0]].cfg.get("dims")
    if not dims:
        raise DianneError(f"{args.big}: its Input has no dims property (e.g. 1,28,28)")
    name = args.name or f"{big.description.name}-biglittle"
    span = parse_range(args.range) if args.range else None
    if args.big_epochs > 0:
        epochs, args.epochs = args.epochs, args.big_epochs
        big.reset(args.seed)
        train_output(big, open_dataset(args.dataset, range_=span), args, f"big {args.big}")
        args.epochs = epochs
    data = open_dataset(args.dataset, range_=span, labels=priority, other=True)
    little_desc, little_weights = little_network(args.little, name, tuple(dims),
                                                 priority + [OTHER], args.repository)
    little = Network(little_desc, backend=args.backend, seed=args.seed)
    if little_weights:
        little.set_weights(little_weights, source=args.little)
    result = train_output(little, data, args, f"little ({args.little})") if args.epochs else {}
    # The Big-Little network gets module UUIDs of its own: weights are found by UUID across a
    # whole repository, so sharing BIG's would mix the two networks' trained weights.
    ids = {m: derived_id(name, which, m) for which, d in (("big", big.description),
                                                         ("little", little_desc))
           for m in d.modules}
    weights = {ids[m]: w for net in (big, little) for m, w in net.get_weights().items()}
    desc = combine(name, renamed(little_desc, ids, f"{name}-little"),
                   renamed(big.description, ids, big.description.name), priority,
                   args.threshold)
    desc.properties["description"] = (
        f"Big-Little: little {args.little} network ({little.parameter_count()} parameters, "
        f"classes {', '.join(priority + [OTHER])}) on the device, big {big.description.name} "
        f"({big.parameter_count()} parameters) on the server; trained on {args.dataset}"
        f"{f' samples {args.range}' if args.range else ''}")
    if args.out:
        folder = Path(args.out)
        write_network(desc, folder)
        for mid, flat in weights.items():
            write_weights(folder / weight_filename(mid), flat)
    else:
        repo = Repository(args.repository)
        folder = repo.store_network(desc)
        for mid, flat in weights.items():
            repo.store_weights(mid, flat, network=name)
    summary = {"name": name, "folder": str(folder), "little_params": little.parameter_count(),
               "big_params": big.parameter_count(), "priority": priority,
               "threshold": args.threshold, "train_samples": len(data),
               "train_accuracy": result.get("train_accuracy")}
    if args.json:
        print_json(summary)
    else:
        print(f"{name}: little network {summary['little_params']} parameters (classes "
              f"{', '.join(priority + [OTHER])}), big network {summary['big_params']} "
              f"parameters, threshold {args.threshold:g}; written to {folder}")
    return 0

"""``dianne cascade sweep|run``: early-exit networks (engine.cascade) from the command line.

``sweep MODEL --dataset SPEC`` evaluates every exit on every sample once, then gives accuracy
and mean multiply-adds per sample for each threshold setting (CSV + PNG; ``--json``: rows with
``thresholds``, ``accuracy``, ``macs_mean``, ``full_accuracy``, ``full_macs``). ``run MODEL``
runs the cascade sample by sample, exit by exit, and reports where each sample stopped and the
multiply-adds it really cost.
"""

from __future__ import annotations

import argparse

from app.cli import print_json
from app.sweep_io import add_dataset_options, add_training_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cascade", help="early-exit networks: sweep the exit thresholds, run")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("sweep", help="accuracy vs mean multiply-adds per threshold setting")
    _common(s)
    add_dataset_options(s)
    s.add_argument("--thresholds", metavar="T1,T2[;T1,T2...]",
                   help="threshold settings, one per exit but the last, ';' between settings "
                        "(default: a grid)")
    s.add_argument("--batch-size", type=int, default=100, metavar="N", help="batch size (100)")
    s.add_argument("--csv", metavar="FILE", help="CSV file (default NAME-cascade.csv)")
    s.add_argument("--png", metavar="FILE", help="PNG plot (default NAME-cascade.png)")
    s.add_argument("--all", action="store_true",
                   help="print every setting, not only the best ones (accuracy vs MACs front)")
    s.set_defaults(handler=_sweep)
    r = actions.add_parser("run", help="run the cascade on an input file or a dataset")
    _common(r)
    add_dataset_options(r, required=False)
    r.add_argument("--input", metavar="FILE", help=".png, .jpg or .npy file")
    r.add_argument("--thresholds", metavar="T1,T2", help="override the stored thresholds")
    r.set_defaults(handler=_run)
    t = actions.add_parser("train", help="train the exits: the last one first, then each "
                                         "earlier exit on what the later ones use, kept fixed")
    _common(t)
    add_dataset_options(t)
    add_training_options(t)
    t.add_argument("--out", metavar="DIR", help="write the network and its weights here "
                                                "(default: the weights go into MODEL's folder)")
    t.add_argument("--clean", action="store_true",
                   help="start from a fresh (seeded) initialisation, not MODEL's weights")
    t.set_defaults(handler=_train)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="network with several Outputs (exits)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="weight tag")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _settings(text: str) -> list[tuple[float, ...]]:
    from engine.errors import DianneError  # noqa: PLC0415

    try:
        return [tuple(float(t) for t in part.split(",") if t.strip())
                for part in text.split(";") if part.strip()]
    except ValueError:
        raise DianneError(f"thresholds are numbers, ',' within a setting and ';' between "
                          f"settings, e.g. 0.9,0.95;0.99,0.99. Received: {text!r}") from None


def _load(args: argparse.Namespace, need_weights: bool = True) -> tuple:
    from app.commands import load_network  # noqa: PLC0415
    from engine.cascade import Cascade  # noqa: PLC0415

    net = load_network(args, need_weights).eval()
    return net, Cascade(net)


def front(rows: list[dict]) -> list[dict]:
    """The settings no other setting beats on both accuracy and MACs, fewest MACs first."""
    out: list[dict] = []
    for r in sorted(rows, key=lambda r: (r["macs_mean"], -r["accuracy"])):
        if not out or r["accuracy"] > out[-1]["accuracy"]:
            out.append(r)
    return out


def _sweep(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from app.charts import Panel, Series, line_chart  # noqa: PLC0415
    from app.sweep_io import (  # noqa: PLC0415
        open_eval_dataset,
        percent,
        print_table,
        progress_bar,
        write_csv,
    )
    from engine.cascade import (  # noqa: PLC0415
        ROW_KEYS,
        best_row,
        exit_costs,
        exit_outputs,
        sweep,
        threshold_grid,
    )
    from engine.errors import DianneError  # noqa: PLC0415

    net, cascade = _load(args)
    exits = cascade.policy.exits
    n_exits = len(exits)
    settings = _settings(args.thresholds) if args.thresholds else threshold_grid(n_exits)
    bad = [s for s in settings if len(s) != n_exits - 1]
    if bad:
        raise DianneError(f"{net.description.name} has {n_exits} exits: each setting needs "
                          f"{n_exits - 1} thresholds. Received: {list(bad[0])}")
    if args.batch_size < 1:
        raise DianneError(f"--batch-size must be at least 1. Received: {args.batch_size}")
    labels = net.labels(exits[-1])
    dataset, targets = open_eval_dataset(args, labels, f"{net.description.name} (last exit)")
    for e in exits[:-1]:
        if net.labels(e) != labels:
            raise DianneError(f"exit {net.modules[e].label} has labels {net.labels(e)}, the "
                              f"last exit {labels}: every exit must have the same classes")
    update, done = progress_bar(len(dataset), args.no_progress)
    try:
        probs = exit_outputs(net, exits, dataset, args.batch_size, update)
    finally:
        done()
    costs, full_macs = exit_costs(net.description, exits)
    rows = sweep(probs, targets, costs, full_macs, settings)
    name = net.description.name
    csv_path = Path(args.csv or f"{name}-cascade.csv")
    png_path = Path(args.png or f"{name}-cascade.png")
    write_csv(csv_path, rows, ROW_KEYS)
    best = front(rows)
    xs = [r["macs_mean"] / full_macs * 100 for r in best] + [100.0]
    accs = [r["accuracy"] for r in best] + [rows[0]["full_accuracy"]]
    line_chart(png_path, f"Early exit {name}: {len(dataset)} samples of {args.dataset} (best "
               f"threshold settings; 100 % = the full network alone)", xs,
               [Panel([Series("accuracy", accs),
                       Series("full network", [rows[0]["full_accuracy"]] * len(xs),
                              dashed=True, points=False)], "accuracy", zero=False)],
               "mean multiply-adds per sample, % of the full network")
    pick = best_row(rows)
    if args.json:
        print_json(rows)
        return 0
    print(f"{name}: {n_exits} exits, {len(dataset)} samples; full network: accuracy "
          f"{percent(rows[0]['full_accuracy'])} %, {full_macs} multiply-adds; exit costs "
          f"{costs}")
    shown = rows if args.all else best
    print_table(["thresholds", "acc %", "MACs mean", "% of full"],
                [[",".join(f"{t:g}" for t in r["thresholds"]), percent(r["accuracy"]),
                  f"{r['macs_mean']:.0f}", f"{r['macs_mean'] / full_macs * 100:.1f}"]
                 for r in shown])
    if pick is not None:
        print(f"fewest multiply-adds within 0.1 points of the full network: thresholds "
              f"{','.join(f'{t:g}' for t in pick['thresholds'])}: accuracy "
              f"{percent(pick['accuracy'])} %, {pick['macs_mean'] / full_macs * 100:.1f} % of "
              f"the full network's multiply-adds")
    print(f"wrote {csv_path} and {png_path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from app.commands import input_shape, load_input  # noqa: PLC0415
    from app.sweep_io import open_eval_dataset, percent  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    if bool(args.input) == bool(args.dataset):
        raise DianneError("give --input FILE or --dataset SPEC (one of them)")
    net, cascade = _load(args)
    limits = None
    if args.thresholds:
        from engine.cascade import CascadePolicy  # noqa: PLC0415

        limits = _settings(args.thresholds)[0]
        CascadePolicy(cascade.policy.exits, list(limits)).check(net.description)
    exits = cascade.policy.exits
    labels = net.labels(exits[-1])
    if args.input:
        declared = bool(net.modules[net.inputs[0]].cfg.get("dims"))
        x = load_input(args.input, input_shape(net), exact=declared)
        k, probs, macs = cascade.classify(x, limits)
        top = int(np.argmax(probs))
        result = {"label": labels[top], "probability": float(probs[top]), "exit": k,
                  "exit_name": net.modules[exits[k]].name, "macs": macs}
        if args.json:
            print_json(result)
        else:
            print(f"{net.description.name}: {result['label']} (p = {result['probability']:.4f}) "
                  f"at exit {k + 1} of {len(exits)} ({result['exit_name']}), {macs} "
                  f"multiply-adds")
        return 0
    dataset, targets = open_eval_dataset(args, labels, net.description.name)
    stops, right, spent = np.zeros(len(exits), dtype=np.int64), 0, 0
    for i in range(len(dataset)):
        k, probs, macs = cascade.classify(dataset.input(i), limits)
        stops[k] += 1
        right += int(np.argmax(probs) == targets[i])
        spent += macs
    result = {"samples": len(dataset), "accuracy": right / len(dataset),
              "macs_mean": spent / len(dataset), "exits": stops.tolist()}
    if args.json:
        print_json(result)
    else:
        print(f"{net.description.name}: {len(dataset)} samples, accuracy "
              f"{percent(result['accuracy'])} %, {result['macs_mean']:.0f} multiply-adds per "
              f"sample; samples per exit {stops.tolist()}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from app.examples import examples_dir  # noqa: PLC0415
    from app.sweep_io import percent, train_output  # noqa: PLC0415
    from engine.cascade import exit_outputs, train_exits  # noqa: PLC0415
    from engine.datasets.spec import open_dataset, parse_range  # noqa: PLC0415
    from engine.description import write_network  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415
    from engine.weights import weight_filename, write_weights  # noqa: PLC0415

    net, cascade = _load(args, need_weights=False)
    if args.clean:
        net.reset(args.seed)
    desc = net.description
    folder = Path(args.out) if args.out else Path(desc.source or "").parent
    if not args.out and (not desc.source or examples_dir() in folder.resolve().parents):
        raise DianneError(f"{args.model}: give --out DIR (the network is not a folder of yours)")
    data = open_dataset(args.dataset, range_=parse_range(args.range) if args.range else None)
    exits = cascade.policy.exits
    train_exits(desc, exits, lambda k, oid, fixed: train_output(
        net, data, args, f"exit {k + 1} ({net.modules[oid].name})", output=oid, fixed=fixed))
    if args.out:
        write_network(desc, folder)
    for mid, flat in net.get_weights().items():
        write_weights(folder / weight_filename(mid, args.tag), flat)
    probs = exit_outputs(net, exits, data)
    targets = data.target_indices(range(len(data)))
    accs = [float((p.argmax(1) == targets).mean()) for p in probs]
    if args.json:
        print_json({"folder": str(folder), "train_accuracy": accs})
    else:
        print(f"{desc.name}: trained {len(exits)} exits; accuracy on the training samples "
              f"{', '.join(percent(a) + ' %' for a in accs)}; weights in {folder}")
    return 0

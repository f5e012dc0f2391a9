"""``dianne train MODEL --dataset SPEC``: train a network with DIANNE's learner options.

The dataset is split into train | validation | test index ranges (default: test = the last
tenth, no validation; ``--split F`` keeps the fraction F for training, ``--validation F`` takes
F of the total from the end of the training part). Learner options use the original's flat
key names (``--method``, ``--learningRate``, ``--batchSize``, ``--momentum``, ``--l2``, ...;
``-o KEY=VALUE`` passes any other key, e.g. dataset adapters ``-o hflip=0.5``). Defaults are the
original's, except ``criterion`` (AUTO: from the network's last layer) and ``sampling``
(PERMUTATION, so an epoch visits every training sample once).

Weights: loaded from the tag (``--initTag``, else ``--tag``) unless ``--clean``; stored, tagged
``--tag``, into the network folder for a stand-alone folder, else into the repository's
``weights/`` (as the original's learner did), with snapshots ``<tag>-<iteration>``
(``--storeInterval``) and ``<tag>-best`` (best validation accuracy). A MODEL that is neither a
path nor a repository network but a bundled example (``dianne examples``) is first copied into
the repository. Ctrl-C stops after the current iteration and stores the weights reached
(exit status 130); a NaN loss stops with the last good weights stored (exit status 1).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

LEARNER_FLAGS = ("method", "learningRate", "batchSize", "momentum", "nesterov", "l2",
                 "criterion", "sampling", "tag", "initTag", "storeInterval")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network on a dataset (DIANNE learner options)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("model", metavar="MODEL",
                   help="network folder, modules.txt, zip, repository network, or bundled example")
    p.add_argument("--dataset", required=True, metavar="SPEC",
                   help="mnist, mnist:DIR, cifar10:DIR, cifar100:DIR, imagenet:DIR, images:DIR, "
                        "csv:FILE, a descriptor .json, or a dataset name")
    p.add_argument("--range", metavar="A,B", help="use only samples [A,B) before splitting")
    p.add_argument("--labels", metavar="L1,L2,...", help="keep only these labels")
    p.add_argument("--other", action="store_true", help="with --labels: add an 'other' class")
    p.add_argument("--split", type=float, metavar="F",
                   help="training fraction; the rest is the test set (default 0.9)")
    p.add_argument("--validation", type=float, default=0.0, metavar="F",
                   help="fraction of the total used for validation (default 0)")
    span = p.add_mutually_exclusive_group()
    span.add_argument("--epochs", type=float, metavar="N", help="passes over the training set")
    span.add_argument("--iterations", type=int, metavar="N", help="mini-batch iterations")
    p.add_argument("--method", metavar="M", help="SGD (default), ADAM, RMSPROP, ADAGRAD, ADADELTA")
    p.add_argument("--learningRate", type=float, metavar="LR")
    p.add_argument("--batchSize", type=int, metavar="N", help="default 1, as the original")
    p.add_argument("--momentum", type=float, metavar="M")
    p.add_argument("--nesterov", type=float, metavar="M", help="Nesterov momentum M")
    p.add_argument("--l2", type=float, metavar="W", help="weight decay")
    p.add_argument("--criterion", metavar="C",
                   help="AUTO (default), NLL, MSE, ABS, BCE, CE (cross-entropy on logits)")
    p.add_argument("--sampling", metavar="S",
                   help="PERMUTATION (default), UNIFORM, SEQUENTIAL, WEIGHTED, UNIFORMCLASS")
    p.add_argument("--clean", action="store_true", help="start from a fresh initialisation")
    p.add_argument("--tag", metavar="T", help="weight tag to load from and store under")
    p.add_argument("--initTag", metavar="T", help="start from the weights with this tag")
    p.add_argument("--storeInterval", type=int, metavar="N", help="snapshot every N iterations")
    p.add_argument("--output", metavar="ID", help="Output module (UUID or name) to train")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other flat DIANNE option (decayRate, beta1, hflip, frame, ...)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=run)


def learner_options(args: argparse.Namespace) -> dict[str, str]:
    """The flat option map of the command line (``-o`` first, explicit flags win)."""
    from engine.errors import DianneError  # noqa: PLC0415

    options: dict[str, str] = {"criterion": "AUTO", "sampling": "PERMUTATION"}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DianneError(f"-o takes KEY=VALUE. Received: {item!r}")
        if key.strip() == "range":
            raise DianneError(f"the sample range is --range A,B (it applies before the split). "
                              f"Received: {item!r}")
        options[key.strip()] = value.strip()
    for key in LEARNER_FLAGS:
        value = getattr(args, key, None)
        if value is not None:
            options[key] = str(value)
    if args.clean:
        options["clean"] = "true"
    return options


def _model(args: argparse.Namespace) -> tuple[Any, Any]:
    """Resolve MODEL (copying a bundled example into the repository when that is what it
    names: trained weights go beside it); returns the ModelSource and the Repository."""
    from app.examples import copy_example, locate_model  # noqa: PLC0415
    from engine.repository import Repository, resolve_model  # noqa: PLC0415

    repo = Repository(args.repository) if args.repository else Repository()
    if locate_model(args.model, repo).kind == "example":
        repo.root.mkdir(parents=True, exist_ok=True)
        copy_example(args.model, repo.network_dir(args.model))
        print(f"copied example {args.model} into the repository {repo.root}", file=sys.stderr)
    return resolve_model(args.model, repo), repo


def weight_store(source: Any, repo: Any) -> tuple[Path, Any]:
    """Where trained weights go and a ``store(tags, weights)`` writing them there."""
    from engine.weights import weight_filename, write_weights  # noqa: PLC0415

    parent = source.folder.resolve().parent if source.folder is not None else None
    standalone = parent is not None and parent != repo.root.resolve() and not (
        parent / "weights").is_dir()
    folder = source.folder if standalone else repo.root / "weights"

    def store(tags: list[str], weights: dict[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for mid, flat in weights.items():
            write_weights(folder / weight_filename(mid, tags), flat)

    return folder, store


def _initial_weights(net: Any, source: Any, config: Any) -> str:
    from engine.errors import RepositoryError  # noqa: PLC0415

    # Loaded even with --clean: the trainer re-initialises only the trained Output's modules,
    # so another branch of the network keeps its stored weights.
    tag = config.init_tag or config.tag
    tags = (tag,) if tag else ()
    try:
        weights = source.load_weights(tags=tags, sizes=net.parameter_sizes())
    except RepositoryError:
        if config.init_tag:
            raise
        return f"no stored weights{f' tagged {tag}' if tag else ''}: fresh initialisation"
    net.set_weights(weights, source=str(source.folder or source.name))
    if config.clean:
        return "fresh initialisation (--clean)"
    return f"{len(weights)} weight files{f' tagged {tag}' if tag else ''}"


def run(args: argparse.Namespace) -> int:
    from app.cli import print_json  # noqa: PLC0415
    from engine.datasets import apply_options, open_dataset, parse_labels, parse_range, splits
    from engine.errors import DianneError  # noqa: PLC0415
    from engine.evaluation import evaluate_network  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415
    from engine.training import TrainConfig, Trainer  # noqa: PLC0415

    source, repo = _model(args)
    options = learner_options(args)
    config = TrainConfig.from_options(options)
    net = Network(source.description, backend=args.backend, seed=args.seed)
    start_from = _initial_weights(net, source, config)
    dataset = open_dataset(args.dataset, range_=parse_range(args.range) if args.range else None,
                           labels=parse_labels(args.labels) if args.labels else None,
                           other=args.other)
    cut = splits(len(dataset), args.split, args.validation)
    train_set, val_set, test_set = cut.apply(dataset)
    train_set = apply_options(train_set, options)
    trainer = Trainer(net, train_set, config, validation=val_set, seed=args.seed,
                      output=args.output)
    folder, store = weight_store(source, repo)
    total = (round(args.epochs * trainer.iterations_per_epoch) if args.epochs is not None
             else args.iterations or config.max_iterations or trainer.iterations_per_epoch)
    if not args.json:
        print(f"training {net.description.name} on {dataset.name}: train {cut.train}, "
              f"validation {cut.validation}, test {cut.test}; {config.method}, "
              f"{trainer.criterion.name}, batch {config.batch_size}; start: {start_from}")
    bar = _bar(total, args.no_progress)
    stop = {"requested": False}

    def on_sigint(signum: int, frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("\nstopping after this iteration (Ctrl-C again to abort)", file=sys.stderr)

    def on_progress(p: dict[str, Any]) -> None:
        if bar is not None:
            bar.n = p["iteration"] - first
            acc = p["train_accuracy"]
            bar.set_postfix_str(f"loss {p['loss']:.4f}" + (f" acc {acc:.3f}" if acc else ""),
                                refresh=True)

    first = trainer.iteration
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = trainer.run(epochs=args.epochs, iterations=args.iterations,
                             on_progress=on_progress, should_stop=lambda: stop["requested"],
                             on_snapshot=store)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    test_acc = None
    if test_set is not None and test_set.classification:
        test_acc = evaluate_network(net, test_set, trainer.output).accuracy
    summary = {**result, "test_accuracy": test_acc, "method": config.method,
               "batch_size": config.batch_size, "splits": cut.to_json(), "weights": str(folder),
               "tag": config.tag}
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    if result["stopped"] == "nan":
        raise DianneError(f"training of {net.description.name} stopped: the loss became NaN or "
                          f"infinite at iteration {result['iterations'] + 1}; the last good "
                          f"weights were stored in {folder}. Received: loss nan")
    return 130 if result["stopped"] == "stopped" else 0


def _bar(total: int, disable: bool) -> Any:
    if disable:
        return None
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, unit="it", file=sys.stderr, disable=None, leave=False)


def _print_summary(s: dict[str, Any]) -> None:
    pct = lambda v: "-" if v is None else f"{v * 100:.2f} %"  # noqa: E731
    loss = "-" if s["train_loss"] is None else f"{s['train_loss']:.4f}"
    state = {"done": "", "stopped": " (stopped by Ctrl-C)", "nan": " (stopped: NaN loss)"}
    print(f"trained {s['iterations']} iterations ({s['epochs']:g} epochs) in "
          f"{s['seconds']:.1f} s, {s['samples_per_s']:.0f} samples/s{state[s['stopped']]}")
    print(f"train loss {loss}  train accuracy {pct(s['train_accuracy'])}  validation "
          f"{pct(s['val_accuracy'])}  test {pct(s['test_accuracy'])}")
    print(f"weights stored in {s['weights']}" + (f" with tag {s['tag']}" if s["tag"] else ""))

"""What ``dianne biglittle`` and ``dianne cascade`` share: the evaluation dataset with its
targets in a network's label order, training one Output with engine.training, CSV writing,
progress, and tables.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# numpy and the engine are imported inside the functions: the command modules import this one
# when the parser is built, and `dianne --help` must stay fast.


def add_dataset_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--dataset", required=required, metavar="SPEC",
                   help="'mnist' (bundled) or 'mnist:DIR'")
    p.add_argument("--range", metavar="A,B",
                   help="half-open sample range [A,B) (e.g. 9000,10000: the held-back samples)")


def open_eval_dataset(args: argparse.Namespace, labels: Sequence[str], what: str
                      ) -> tuple[Any, Any]:
    """The dataset of ``--dataset``/``--range`` and its targets as indices into ``labels``."""
    import numpy as np  # noqa: PLC0415

    from engine.datasets.spec import open_dataset, parse_range  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    dataset = open_dataset(args.dataset, range_=parse_range(args.range) if args.range else None)
    if sorted(dataset.labels) != sorted(labels):
        raise DianneError(f"{what} has labels {list(labels)} but dataset {args.dataset} has "
                          f"{dataset.labels}. Received: {args.dataset}")
    if len(dataset) == 0:
        raise DianneError(f"dataset {args.dataset} has no samples in that range. "
                          f"Received: {args.range}")
    remap = np.array([list(labels).index(c) for c in dataset.labels], dtype=np.int64)
    return dataset, remap[dataset.target_indices(range(len(dataset)))]


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> Path:
    """Rows as CSV (list values joined with ';'), written atomically."""
    from engine.fileio import atomic_write  # noqa: PLC0415

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([";".join(map(str, v)) if isinstance(v, list) else
                         ("" if v is None else v) for v in (row[k] for k in keys)])
    atomic_write(path, buf.getvalue())
    return Path(path)


def progress_bar(total: int, disable: bool, unit: str = "sample"
                 ) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """(callback(done, total), close) for a tqdm bar on stderr, or no-ops."""
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:  # pragma: no cover - tqdm is a dependency
        disable = True
    if disable:
        return (lambda done, n: None), (lambda: None)
    bar = tqdm(total=total, unit=unit, file=sys.stderr, disable=None, leave=False)

    def update(done: int, n: int) -> None:
        bar.n = done
        if done == n or done % 50 == 0:
            bar.refresh()

    return update, bar.close


def percent(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


TRAIN_DEFAULTS = {"method": "SGD", "criterion": "AUTO", "learningRate": "0.01", "batchSize": "32",
                  "momentum": "0.9", "sampling": "PERMUTATION"}


def add_training_options(p: argparse.ArgumentParser, epochs: int = 20) -> None:
    p.add_argument("--epochs", type=float, default=epochs, metavar="N",
                   help=f"training epochs ({epochs})")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="learner option (method, learningRate, batchSize, momentum, l2, ...; "
                        "defaults: " + ", ".join(f"{k}={v}" for k, v in TRAIN_DEFAULTS.items())
                        + ")")
    p.add_argument("--seed", type=int, default=0, help="initialisation/shuffle seed (0)")


def learner_options(args: argparse.Namespace) -> dict[str, str]:
    from engine.errors import DianneError  # noqa: PLC0415

    options = dict(TRAIN_DEFAULTS)
    for opt in args.option:
        key, sep, value = opt.partition("=")
        if not sep or not key.strip():
            raise DianneError(f"--option takes KEY=VALUE. Received: {opt!r}")
        options[key.strip()] = value.strip()
    return options


def train_output(net: Any, dataset: Any, args: argparse.Namespace, what: str,
                 output: str | None = None, fixed: Sequence[str] = ()) -> dict[str, Any]:
    """Train ``net``'s ``output`` (all modules it needs but ``fixed``) for ``args.epochs``."""
    from engine.errors import DianneError  # noqa: PLC0415
    from engine.training import TrainConfig, Trainer  # noqa: PLC0415

    options = learner_options(args)
    if fixed:
        options["fixed"] = ",".join(fixed)
    trainer = Trainer(net, dataset, TrainConfig.from_options(options), seed=args.seed,
                      output=output)
    total = max(1, round(args.epochs * trainer.iterations_per_epoch))
    update, done = progress_bar(total, getattr(args, "no_progress", False), unit="it")
    try:
        result = trainer.run(epochs=args.epochs,
                             on_progress=lambda p: update(min(p["iteration"], total), total))
    finally:
        done()
    net.eval()
    if result.get("stopped") == "nan":
        raise DianneError(f"training {what} stopped: the loss became NaN or infinite. "
                          f"Received: loss nan (try a smaller -o learningRate=...)")
    if not getattr(args, "json", False):
        acc = result.get("train_accuracy")
        print(f"trained {what}: {len(dataset)} samples, {args.epochs:g} epochs, loss "
              f"{result.get('train_loss', float('nan')):.4f}"
              f"{'' if acc is None else f', train accuracy {acc * 100:.2f} %'} "
              f"({result.get('seconds', 0):.0f} s)", file=sys.stderr)
    return result

"""``dianne bench train``: one training epoch of the MNIST MLP, ours against PyTorch (CPU).

The MLP 784-100-10 (ReLU, LogSoftmax) trains for one epoch of the bundled MNIST set (10,000
samples, or ``--samples``) with batch 32, plain SGD and NLL: ours through ``engine.training``
(data fetched from the dataset each iteration, the graph executor, the optimizer), PyTorch
with an equal model starting from the same weights, the same batch order and the whole set
preloaded as one tensor. Both get a short warm-up first; the time of the epoch itself is
measured, in the same run. Prints samples/s of both and the ratio ours / PyTorch (> 1: ours is
faster); ``--json`` gives ``ours_samples_per_s``, ``torch_samples_per_s`` (null without
PyTorch) and ``ratio``, plus the final losses as a sanity check that both learned alike.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

NAME = "train"
HELP = "one epoch of the MNIST MLP 784-100-10 (batch 32, SGD): ours vs PyTorch CPU"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", type=int, default=10000, metavar="N",
                   help="samples in the epoch (default: the whole bundled set, 10000)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--learning-rate", type=float, default=0.01, metavar="LR")
    p.add_argument("--torch-threads", type=int, metavar="N",
                   help="PyTorch intra-op threads (default: PyTorch's own choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _ours(args: argparse.Namespace, data: Any, order: np.ndarray) -> tuple[float, float, Any]:
    from engine.builder import sequential  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415
    from engine.training import TrainConfig, Trainer  # noqa: PLC0415

    desc = sequential("mlp", [("Linear", {"input": 784, "output": 100}), ("ReLU", {}),
                              ("Linear", {"input": 100, "output": 10}), ("LogSoftmax", {})],
                      input_dims=(1, 28, 28), labels=[str(d) for d in range(10)])
    net = Network(desc, backend="numpy", seed=0)
    start_weights = net.get_weights()
    config = TrainConfig.from_options({"method": "SGD", "criterion": "NLL",
                                       "learningRate": str(args.learning_rate),
                                       "batchSize": str(args.batch_size),
                                       "sampling": "SEQUENTIAL"})
    warm = Trainer(net, data, config, seed=0)
    warm.run(iterations=20)
    net.set_weights(start_weights)
    trainer = Trainer(net, _Ordered(data, order), config, seed=0)
    t0 = time.perf_counter()
    result = trainer.run(epochs=1)
    seconds = time.perf_counter() - t0
    return len(order) / seconds, result["train_loss"], (net, start_weights)


def _torch(args: argparse.Namespace, data: Any, order: np.ndarray, net: Any,
           weights: dict) -> tuple[float, float] | None:
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    lin = [m for m in net.modules.values() if m.type_name == "Linear"]
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 100), torch.nn.ReLU(),
                                torch.nn.Linear(100, 10), torch.nn.LogSoftmax(dim=1))

    def reset() -> None:
        with torch.no_grad():
            for layer, mod in zip((model[1], model[3]), lin, strict=True):
                flat = torch.from_numpy(weights[mod.id])
                n = layer.weight.numel()
                layer.weight.copy_(flat[:n].reshape(layer.weight.shape))
                layer.bias.copy_(flat[n:])

    x = torch.from_numpy(data.inputs(range(len(data))))
    y = torch.from_numpy(data.target_indices(range(len(data))))
    opt = torch.optim.SGD(model.parameters(), lr=args.learning_rate)
    loss_fn = torch.nn.NLLLoss()
    idx = torch.from_numpy(order)
    bs = args.batch_size

    def epoch(limit: int | None = None) -> float:
        total, count = 0.0, 0
        for s in range(0, len(idx), bs):
            if limit is not None and count >= limit:
                break
            b = idx[s:s + bs]
            opt.zero_grad()
            loss = loss_fn(model(x[b]), y[b])
            loss.backward()
            opt.step()
            total += loss.detach().item()
            count += 1
        return total / count

    reset()
    epoch(limit=20)  # warm-up, as ours
    reset()
    t0 = time.perf_counter()
    loss = epoch()
    return len(order) / (time.perf_counter() - t0), loss


class _Ordered:
    """The dataset seen in a fixed order (so that both frameworks get the same batches)."""

    def __new__(cls, data: Any, order: np.ndarray) -> Any:
        from engine.datasets import RangeAdapter  # noqa: PLC0415

        return RangeAdapter.from_indices(data, order)


def run(args: argparse.Namespace) -> int:
    from app.cli import print_json  # noqa: PLC0415
    from engine.datasets import open_dataset  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    data = open_dataset("mnist")
    if not 1 <= args.samples <= len(data) or args.batch_size < 1:
        raise DianneError(f"--samples must be in 1..{len(data)} and --batch-size >= 1. "
                          f"Received: {args.samples}, {args.batch_size}")
    data = open_dataset("mnist", range_=(0, args.samples))
    data.inputs([0])  # decode the files before any clock starts
    order = np.random.default_rng(0).permutation(len(data))
    ours, ours_loss, (net, weights) = _ours(args, data, order)
    theirs = _torch(args, data, order, net, weights)
    torch_rate, torch_loss = theirs if theirs is not None else (None, None)
    ratio = ours / torch_rate if torch_rate else None
    if args.json:
        print_json({"ours_samples_per_s": ours, "torch_samples_per_s": torch_rate,
                    "ratio": ratio, "samples": len(data), "batch_size": args.batch_size,
                    "ours_loss": ours_loss, "torch_loss": torch_loss})
        return 0
    print(f"MNIST MLP 784-100-10, one epoch of {len(data)} samples, batch {args.batch_size}, "
          f"SGD lr {args.learning_rate}")
    print(f"ours     {ours:10.0f} samples/s   epoch loss {ours_loss:.4f}")
    if torch_rate is None:
        print("pytorch  not installed (pip install torch for the comparison)")
    else:
        print(f"pytorch  {torch_rate:10.0f} samples/s   epoch loss {torch_loss:.4f}")
        print(f"ratio    {ratio:.2f}x (ours / pytorch; > 1 means ours is faster)")
    return 0

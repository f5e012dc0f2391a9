"""``dianne bench train``: one training epoch of the MNIST MLP, ours against PyTorch (CPU).

The MLP 784-100-10 (ReLU, LogSoftmax) trains for one epoch of the bundled MNIST set (10,000
samples, or ``--samples``) with batch 32, plain SGD and NLL: ours through ``engine.training``
(data fetched from the dataset each iteration, the graph executor, the optimizer), PyTorch
with an equal model from the same initial weights over the same batches, its data preloaded as
one tensor. After a warm-up, ``--repeat`` rounds each time one epoch of every contender,
interleaved so that a busy machine hurts them alike; the best epoch of each counts. PyTorch
runs with its default thread count and with one thread, and the faster counts
(``--torch-threads N`` fixes it). Prints samples/s and the ratio ours / PyTorch (> 1: ours is
faster); ``--json`` gives ``ours_samples_per_s``, ``torch_samples_per_s`` (null without
PyTorch), ``ratio``, and the epoch losses (equal up to rounding: both learned alike).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported by the handler only: `dianne --help` stays fast
    import numpy as np

NAME = "train"
HELP = "one epoch of the MNIST MLP 784-100-10 (batch 32, SGD): ours vs PyTorch CPU"

Epoch = Callable[[], float]  # runs one epoch from the initial weights, returns its mean loss


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", type=int, default=10000, metavar="N",
                   help="samples in the epoch (default: the whole bundled set, 10000)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--learning-rate", type=float, default=0.01, metavar="LR")
    p.add_argument("--repeat", type=int, default=3, metavar="N",
                   help="timed epochs per contender, the best counts (default 3)")
    p.add_argument("--torch-threads", type=int, metavar="N",
                   help="PyTorch intra-op threads (default: the faster of PyTorch's own choice "
                        "and one thread)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _ours(args: argparse.Namespace, data: Any, order: np.ndarray) -> tuple[Epoch, Any]:
    from engine.builder import sequential  # noqa: PLC0415
    from engine.datasets import RangeAdapter  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415
    from engine.training import TrainConfig, Trainer  # noqa: PLC0415

    desc = sequential("mlp", [("Linear", {"input": 784, "output": 100}), ("ReLU", {}),
                              ("Linear", {"input": 100, "output": 10}), ("LogSoftmax", {})],
                      input_dims=(1, 28, 28), labels=[str(d) for d in range(10)])
    net = Network(desc, backend="numpy", seed=0)
    start = net.get_weights()
    config = TrainConfig.from_options({"method": "SGD", "criterion": "NLL",
                                       "learningRate": str(args.learning_rate),
                                       "batchSize": str(args.batch_size),
                                       "sampling": "SEQUENTIAL"})
    ordered = RangeAdapter.from_indices(data, order)  # both frameworks see the same batches

    def epoch() -> float:
        net.set_weights(start)
        return Trainer(net, ordered, config, seed=0).run(epochs=1)["train_loss"]

    return epoch, net


def _torch(args: argparse.Namespace, data: Any, order: np.ndarray, net: Any,
           threads: int) -> Epoch:
    import torch  # noqa: PLC0415

    nn = torch.nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10),
                          nn.LogSoftmax(dim=1))
    start = [torch.from_numpy(net.modules[m].get_flat()) for m in net.parameter_sizes()]
    x = torch.from_numpy(data.inputs(range(len(data))))
    y = torch.from_numpy(data.target_indices(range(len(data))))
    idx, bs = torch.from_numpy(order), args.batch_size
    opt = torch.optim.SGD(model.parameters(), lr=args.learning_rate)
    loss_fn = nn.NLLLoss()

    def epoch() -> float:
        torch.set_num_threads(threads)
        with torch.no_grad():
            for layer, flat in zip((model[1], model[3]), start, strict=True):
                n = layer.weight.numel()
                layer.weight.copy_(flat[:n].reshape(layer.weight.shape))
                layer.bias.copy_(flat[n:])
        total, count = 0.0, 0
        for s in range(0, len(idx), bs):
            b = idx[s:s + bs]
            opt.zero_grad()
            loss = loss_fn(model(x[b]), y[b])
            loss.backward()
            opt.step()
            total += loss.detach().item()
            count += 1
        return total / count

    return epoch


def _timed(epoch: Epoch) -> tuple[float, float]:
    t0 = time.perf_counter()
    loss = epoch()
    return time.perf_counter() - t0, loss


def run(args: argparse.Namespace) -> int:
    import importlib.util  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from app.cli import print_json  # noqa: PLC0415
    from engine.datasets import open_dataset  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    data = open_dataset("mnist")
    if not 1 <= args.samples <= len(data) or args.batch_size < 1 or args.repeat < 1:
        raise DianneError(f"--samples must be in 1..{len(data)}, --batch-size and --repeat at "
                          f"least 1. Received: {args.samples}, {args.batch_size}, {args.repeat}")
    data = open_dataset("mnist", range_=(0, args.samples))
    data.inputs([0])  # decode the files before any clock starts
    order = np.random.default_rng(0).permutation(len(data))
    ours, net = _ours(args, data, order)
    contenders: dict[str, Epoch] = {"ours": ours}
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: PLC0415

        default = torch.get_num_threads()
        counts = [args.torch_threads] if args.torch_threads else sorted({default, 1})
        for n in counts:
            contenders[f"torch{n}"] = _torch(args, data, order, net, n)
    best: dict[str, tuple[float, float]] = {}
    for epoch in contenders.values():  # warm-up: caches, BLAS thread pools, allocators
        _timed(epoch)
    for _ in range(args.repeat):
        for name, epoch in contenders.items():
            seconds, loss = _timed(epoch)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, loss)
    n = len(order)
    ours_rate, ours_loss = n / best["ours"][0], best["ours"][1]
    torch_rate = torch_loss = threads = ratio = None
    if len(best) > 1:
        name = min((k for k in best if k != "ours"), key=lambda k: best[k][0])
        torch_rate, torch_loss, threads = n / best[name][0], best[name][1], int(name[5:])
        ratio = ours_rate / torch_rate
    if args.json:
        print_json({"ours_samples_per_s": ours_rate, "torch_samples_per_s": torch_rate,
                    "ratio": ratio, "samples": n, "batch_size": args.batch_size,
                    "torch_threads": threads, "ours_loss": ours_loss, "torch_loss": torch_loss})
        return 0
    print(f"MNIST MLP 784-100-10, one epoch of {n} samples, batch {args.batch_size}, SGD lr "
          f"{args.learning_rate}; best of {args.repeat}")
    print(f"ours     {ours_rate:10.0f} samples/s   epoch loss {ours_loss:.4f}")
    if torch_rate is None:
        print("pytorch  not installed (pip install torch for the comparison)")
    else:
        print(f"pytorch  {torch_rate:10.0f} samples/s   epoch loss {torch_loss:.4f}   "
              f"({threads} thread{'s' if threads != 1 else ''})")
        print(f"ratio    {ratio:.2f}x (ours / pytorch; > 1 means ours is faster)")
    return 0

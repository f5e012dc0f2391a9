"""Developer script: (re)build the example networks in ``resources/examples``.

Writes each example as a DIANNE network folder (``modules.txt``, ``layout.txt``) with fixed
module UUIDs, and trains the MNIST ones with ``engine.training`` on samples [0, 9000) of the
bundled MNIST test set — the same split and recipes as the ``dianne train`` commands in
``docs/training.md`` — so they evaluate out of the box on the held-back [9000, 10000).
The CIFAR-10 CNN ships untrained (no CIFAR data is bundled). Not installed; run from the
repository root: ``python tools/make_examples.py [NAME ...]`` (default: all).

Examples: ``mnist-mlp`` (784-100-10), ``lenet`` (LeNet-5 style), ``cifar10-cnn`` (three
conv/pool stages). ``mnist-biglittle`` and ``mnist-cascade`` are built from the trained LeNet by
``tools/make_biglittle_examples.py`` (run this script first).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.builder import NetworkBuilder  # noqa: E402
from engine.datasets import apply_options, open_dataset, splits  # noqa: E402
from engine.description import NetworkDescription, write_network  # noqa: E402
from engine.evaluation import evaluate_network  # noqa: E402
from engine.graph import Network  # noqa: E402
from engine.training import TrainConfig, Trainer  # noqa: E402
from engine.weights import weight_filename, write_weights  # noqa: E402

OUT = ROOT / "resources" / "examples"
DIGITS = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
CIFAR10 = "[airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck]"
CROP = {"cropWidth": "28", "cropHeight": "28"}
# The recipes of docs/training.md (flat DIANNE learner options).
MLP_RECIPE = {"method": "ADAM", "learningRate": "0.001", "batchSize": "32", "epochs": 20,
              "cropPadding": "1", **CROP}
LENET_RECIPE = {"method": "SGD", "learningRate": "0.05", "momentum": "0.9", "batchSize": "32",
                "decayRate": "0.0003", "epochs": 15, "cropPadding": "2", **CROP}


def uid(example: int, k: int) -> str:
    """Stable, readable module UUIDs: d1a00eXX-0000-4000-8000-0000000000kk."""
    return f"d1a00e{example:02x}-0000-4000-8000-{k:012x}"


def chain(name: str, about: str, example: int, layers: list[tuple[str, dict]]):
    b = NetworkBuilder(name, {"description": about})
    ids = []
    for k, (type_name, props) in enumerate(layers):
        props = dict(props)
        ids.append(b.add(type_name, name=props.pop("name", None), id=uid(example, k), **props))
    b.chain(*ids)
    return b.build(), {m: (80 + 170 * k, 200) for k, m in enumerate(ids)}


def layout_for(desc: NetworkDescription, positions: dict[str, tuple[int, int]]) -> str:
    nodes = [{"id": m, "positionX": x, "positionY": y} for m, (x, y) in positions.items()]
    edges = [(m, n) for m in positions for n in desc.modules[m].next]
    cons = [{"connectionId": f"con_{4 * k + 8}", "sourceId": a, "targetId": b,
             "anchors": [[1, 0.5, 1, 0, 0, 0], [0, 0.5, -1, 0, 0, 0]]}
            for k, (a, b) in enumerate(edges)]
    return json.dumps({"nodes": nodes, "connections": cons}, separators=(",", ":"))


def train(net: Network, recipe: dict) -> float:
    """Train on [0, 9000) of the bundled MNIST; return the accuracy on [9000, 10000)."""
    options = {k: v for k, v in recipe.items() if k != "epochs"}
    options.update(criterion="AUTO", sampling="PERMUTATION", clean="true")
    data = open_dataset("mnist")
    train_set, _, test_set = splits(len(data)).apply(data)
    config = TrainConfig.from_options(options)
    trainer = Trainer(net, apply_options(train_set, options), config, seed=1)
    start = time.perf_counter()
    result = trainer.run(epochs=recipe["epochs"])
    acc = evaluate_network(net, test_set, trainer.output).accuracy
    print(f"{net.description.name}: loss {result['train_loss']:.4f}, held-back "
          f"accuracy {acc:.4f} ({time.perf_counter() - start:.0f} s)")
    return acc


def save(desc: NetworkDescription, positions: dict, net: Network | None) -> None:
    folder = OUT / desc.name
    if folder.exists():
        shutil.rmtree(folder)
    write_network(desc, folder)
    (folder / "layout.txt").write_text(layout_for(desc, positions))
    if net is not None:
        for mid, flat in net.get_weights().items():
            write_weights(folder / weight_filename(mid), flat)


def mnist_mlp() -> None:
    desc, pos = chain("mnist-mlp", "MNIST MLP 784-100-10 (ReLU, LogSoftmax), trained on "
                      "samples 0-8999 of the bundled set", 1, [
        ("Input", {"dims": "1,28,28"}),
        ("Linear", {"input": 784, "output": 100}),
        ("ReLU", {}),
        ("Linear", {"input": 100, "output": 10}),
        ("LogSoftmax", {}),
        ("Output", {"labels": DIGITS}),
    ])
    net = Network(desc, backend="numpy", seed=1)
    train(net, MLP_RECIPE)
    save(desc, pos, net)


def lenet() -> None:
    desc, pos = chain("lenet", "LeNet-5 style CNN for MNIST, trained on samples 0-8999 of the "
                      "bundled set", 2, [
        ("Input", {"dims": "1,28,28"}),
        ("Convolution", {"noInputPlanes": 1, "noOutputPlanes": 6, "kernelWidth": 5,
                         "kernelHeight": 5, "padX": 2, "padY": 2}),
        ("ReLU", {}),
        ("MaxPooling", {"width": 2, "height": 2}),
        ("Convolution", {"noInputPlanes": 6, "noOutputPlanes": 16, "kernelWidth": 5,
                         "kernelHeight": 5}),
        ("ReLU", {}),
        ("MaxPooling", {"width": 2, "height": 2}),
        ("Linear", {"input": 400, "output": 120}),
        ("ReLU", {}),
        ("Linear", {"input": 120, "output": 84}),
        ("ReLU", {}),
        ("Linear", {"input": 84, "output": 10}),
        ("LogSoftmax", {}),
        ("Output", {"labels": DIGITS}),
    ])
    net = Network(desc, backend="numpy", seed=1)
    train(net, LENET_RECIPE)
    save(desc, pos, net)


def cifar10_cnn() -> None:
    conv = lambda i, o, k: ("Convolution", {  # noqa: E731
        "noInputPlanes": i, "noOutputPlanes": o, "kernelWidth": k, "kernelHeight": k,
        "padX": k // 2, "padY": k // 2})
    pool = ("MaxPooling", {"width": 2, "height": 2})
    desc, pos = chain("cifar10-cnn", "Small CNN for CIFAR-10 (3x32x32): three conv/ReLU/pool "
                      "stages 16-32-64, then 1024-64-10 (untrained)", 3, [
        ("Input", {"dims": "3,32,32"}),
        conv(3, 16, 5), ("ReLU", {}), pool,
        conv(16, 32, 5), ("ReLU", {}), pool,
        conv(32, 64, 3), ("ReLU", {}), pool,
        ("Linear", {"input": 1024, "output": 64}), ("ReLU", {}),
        ("Linear", {"input": 64, "output": 10}), ("LogSoftmax", {}),
        ("Output", {"labels": CIFAR10}),
    ])
    save(desc, pos, None)


BUILDERS = {"mnist-mlp": mnist_mlp, "lenet": lenet, "cifar10-cnn": cifar10_cnn}


def main(names: list[str]) -> None:
    for name in names or list(BUILDERS):
        BUILDERS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])

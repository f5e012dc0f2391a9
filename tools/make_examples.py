"""Developer script: (re)build the example networks in ``resources/examples``.

Writes each example as a DIANNE network folder (``modules.txt``, ``layout.txt``) with fixed
module UUIDs, and trains ``mnist-mlp`` on samples [0, 9000) of the bundled MNIST test set with
plain mini-batch SGD through the engine's own forward/backward, so the example can be evaluated
out of the box on the held-back samples [9000, 10000). Not installed; run from the repository
root: ``python tools/make_examples.py``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.builder import NetworkBuilder  # noqa: E402
from engine.datasets.spec import open_dataset  # noqa: E402
from engine.description import write_network  # noqa: E402
from engine.graph import Network  # noqa: E402
from engine.weights import weight_filename, write_weights  # noqa: E402

OUT = ROOT / "resources" / "examples"
DIGITS = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"


def uid(example: int, k: int) -> str:
    """Stable, readable module UUIDs: ddddeeee-0000-4000-8000-0000000000kk."""
    return f"d1a00e{example:02x}-0000-4000-8000-{k:012x}"


def chain(name: str, about: str, example: int, layers: list[tuple[str, dict]]):
    b = NetworkBuilder(name, {"description": about})
    ids = []
    for k, (type_name, props) in enumerate(layers):
        props = dict(props)
        ids.append(b.add(type_name, name=props.pop("name", None), id=uid(example, k), **props))
    b.chain(*ids)
    return b.build(), ids


def layout_for(ids: list[str]) -> str:
    nodes = [{"id": m, "positionX": 80 + 170 * k, "positionY": 200} for k, m in enumerate(ids)]
    cons = [{"connectionId": f"con_{4 * k + 8}", "sourceId": a, "targetId": b,
             "anchors": [[1, 0.5, 1, 0, 0, 0], [0, 0.5, -1, 0, 0, 0]]}
            for k, (a, b) in enumerate(zip(ids, ids[1:], strict=False))]
    return json.dumps({"nodes": nodes, "connections": cons}, separators=(",", ":"))


def train(desc, epochs: int, lr: float, batch: int = 32, seed: int = 1) -> Network:
    data = open_dataset("mnist", range_=(0, 9000))
    net = Network(desc, backend="numpy", seed=seed).train()
    rng = np.random.default_rng(seed)
    velocity = {}
    for epoch in range(epochs):
        order = rng.permutation(len(data))
        loss_sum, start = 0.0, time.time()
        for s in range(0, len(order) - batch + 1, batch):
            idx = order[s : s + batch]
            x, t = data.inputs(idx), data.target_indices(idx)
            net.zero_grad()
            logp = net.forward(x)
            loss_sum += -float(logp[np.arange(batch), t].mean())
            grad = np.zeros_like(logp)
            grad[np.arange(batch), t] = -1.0 / batch
            net.backward(grad)
            for mod in net.modules.values():
                for pname, g in mod.grads.items():
                    v = velocity.setdefault((mod.id, pname), np.zeros_like(g))
                    v *= 0.9
                    v -= lr * g
                    mod.params[pname] += v
        print(f"{desc.name} epoch {epoch + 1}: loss {loss_sum / (len(order) // batch):.4f} "
              f"({time.time() - start:.1f} s)")
    return net.eval()


def held_back_accuracy(net: Network) -> float:
    data = open_dataset("mnist", range_=(9000, 10000))
    out = net.forward(data.inputs(range(len(data))))
    return float((out.argmax(axis=1) == data.target_indices(range(len(data)))).mean())


def save(desc, ids, folder: Path, net: Network | None) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    write_network(desc, folder)
    (folder / "layout.txt").write_text(layout_for(ids))
    if net is not None:
        for mid, flat in net.get_weights().items():
            write_weights(folder / weight_filename(mid), flat)


def main() -> None:
    mlp, mlp_ids = chain("mnist-mlp", "MNIST MLP 784-100-10 (ReLU, LogSoftmax), trained on "
                         "samples 0-8999 of the bundled set", 1, [
        ("Input", {"dims": "1,28,28"}),
        ("Linear", {"input": 784, "output": 100}),
        ("ReLU", {}),
        ("Linear", {"input": 100, "output": 10}),
        ("LogSoftmax", {}),
        ("Output", {"labels": DIGITS}),
    ])
    net = train(mlp, epochs=8, lr=0.05)
    print(f"mnist-mlp: accuracy on samples 9000-9999: {held_back_accuracy(net):.4f}")
    save(mlp, mlp_ids, OUT / "mnist-mlp", net)

    lenet, lenet_ids = chain("lenet", "LeNet-5 for MNIST (untrained structure)", 2, [
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
    save(lenet, lenet_ids, OUT / "lenet", None)


if __name__ == "__main__":
    main()

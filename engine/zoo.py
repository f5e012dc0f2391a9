"""Reference networks for benchmarks, tests and placement: MLPs, LeNet-5 and the fast OverFeat.

Each function returns a :class:`NetworkDescription` with deterministic module UUIDs (a UUID5
of the network's name and the module's position, so the same call always gives the same ids and
weight files can be matched) and an Input carrying its ``dims``. Weights come from
``Network(desc, seed=...)``.

``overfeat_fast`` is the "fast" model of Sermanet et al., *OverFeat: Integrated Recognition,
Localization and Detection using Convolutional Networks* (2013), table 1: a 3x231x231 input,
conv 96@11x11 stride 4 + max 2x2, conv 256@5x5 + max 2x2, conv 512@3x3, conv 1024@3x3,
conv 1024@3x3 + max 2x2 (3x3 convolutions zero-padded by 1), then fully connected layers of
3072, 4096 and 1000 units, ReLU after every layer but the last, Softmax at the end:
145.9 M parameters (584 MB as float32), 2.8 G multiply-accumulates (5.6 GFLOP) per sample.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.builder import NetworkBuilder
from engine.description import NetworkDescription, write_network

# Namespace of the zoo's module ids (a UUID5 of a fixed URL, itself deterministic).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://dianne.intec.ugent.be/zoo")

Layer = tuple[str, dict[str, Any]]


def module_id(network: str, index: int) -> str:
    """The deterministic UUID of module number ``index`` of zoo network ``network``."""
    return str(uuid.uuid5(_NAMESPACE, f"{network}/{index}"))


def _chain(name: str, dims: Sequence[int], layers: Sequence[Layer], labels: Sequence[str] = (),
           description: str = "") -> NetworkDescription:
    """Input(dims) -> layers -> Output, with deterministic ids."""
    b = NetworkBuilder(name, {"description": description} if description else None)
    ids = [b.add("Input", id=module_id(name, 0), dims=",".join(str(d) for d in dims))]
    for i, (type_name, props) in enumerate(layers, 1):
        ids.append(b.add(type_name, id=module_id(name, i), **props))
    out_props = {"labels": "[" + ", ".join(labels) + "]"} if labels else {}
    ids.append(b.add("Output", id=module_id(name, len(layers) + 1), **out_props))
    b.chain(*ids)
    return b.build()


def mlp(sizes: list[int], *, activation: str = "ReLU", output: str | None = "LogSoftmax",
        name: str | None = None) -> NetworkDescription:
    """Fully connected layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``, ``activation``
    between them and ``output`` (an activation type, or None) after the last one."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp needs at least two positive sizes. Received: {sizes}")
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(("Linear", {"input": n_in, "output": n_out}))
        last = i == len(sizes) - 2
        if not last:
            layers.append((activation, {}))
        elif output:
            layers.append((output, {}))
    name = name or "mlp-" + "-".join(map(str, sizes))
    return _chain(name, (sizes[0],), layers, [str(i) for i in range(sizes[-1])],
                  f"MLP {'-'.join(map(str, sizes))}")


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0) -> Layer:
    props: dict[str, Any] = {"noInputPlanes": c_in, "noOutputPlanes": c_out, "kernelWidth": k,
                             "kernelHeight": k}
    if stride != 1:
        props.update(strideX=stride, strideY=stride)
    if pad:
        props.update(padX=pad, padY=pad)
    return ("Convolution", props)


def _max(k: int) -> Layer:
    return ("MaxPooling", {"width": k, "height": k})


RELU: Layer = ("ReLU", {})


def lenet5() -> NetworkDescription:
    """LeNet-5 for 1x28x28 digits: conv 6@5x5 (pad 2), max 2, conv 16@5x5, max 2, 120, 84, 10."""
    layers = [_conv(1, 6, 5, pad=2), RELU, _max(2), _conv(6, 16, 5), RELU, _max(2),
              ("Linear", {"input": 400, "output": 120}), RELU,
              ("Linear", {"input": 120, "output": 84}), RELU,
              ("Linear", {"input": 84, "output": 10}), ("LogSoftmax", {})]
    return _chain("lenet5", (1, 28, 28), layers, [str(i) for i in range(10)], "LeNet-5")


def overfeat_fast() -> NetworkDescription:
    """The fast OverFeat of Sermanet et al. 2013 (see the module docstring)."""
    layers = [_conv(3, 96, 11, stride=4), RELU, _max(2),
              _conv(96, 256, 5), RELU, _max(2),
              _conv(256, 512, 3, pad=1), RELU,
              _conv(512, 1024, 3, pad=1), RELU,
              _conv(1024, 1024, 3, pad=1), RELU, _max(2),
              ("Linear", {"input": 1024 * 6 * 6, "output": 3072}), RELU,
              ("Linear", {"input": 3072, "output": 4096}), RELU,
              ("Linear", {"input": 4096, "output": 1000}), ("Softmax", {})]
    return _chain("overfeat-fast", (3, 231, 231), layers, (),
                  "OverFeat fast (Sermanet et al. 2013): structure only, random weights")


NETWORKS = {"mlp20": lambda: mlp([784, 20, 10]), "mlp1024": lambda: mlp([784, 1024, 1024, 10]),
            "lenet": lenet5, "overfeat": overfeat_fast}


def write_example(desc: NetworkDescription, folder: str | Path, step: int = 170) -> Path:
    """Write ``modules.txt`` and a left-to-right ``layout.txt`` for a chain network."""
    from engine.layout import Layout, write_layout  # noqa: PLC0415 (only used by tooling)

    folder = Path(folder)
    write_network(desc, folder)
    positions = {mid: (80 + step * i, 200) for i, mid in enumerate(desc.modules)}
    write_layout(Layout(positions), folder)
    return folder

"""The reference engines of ``dianne bench forward``, built from OUR network and weights.

* ONNX Runtime runs the model :func:`engine.onnx.to_onnx` exports (the same graph, the same
  weights; ORT's default session options, i.e. all its graph optimisations and its own threads).
* PyTorch runs an equal ``nn.Sequential`` with the weights copied in (eager, ``inference_mode``,
  its default threads).

Each builder returns ``(call, note)``: ``call(x)`` runs one sample (``x`` without batch axis) and
returns the output without batch axis as numpy, or ``None`` with a note saying why the engine is
absent (not installed, a module type it cannot express).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Call = Callable[[np.ndarray], np.ndarray]


def ort_engine(net: Any, shape: tuple[int, ...]) -> tuple[Call | None, str]:
    try:
        import onnxruntime as ort  # noqa: PLC0415
    except ImportError:
        return None, "onnxruntime not installed (pip install -e '.[bench]')"
    from engine.onnx import to_onnx  # noqa: PLC0415

    model = to_onnx(net, shape)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    del model
    name = session.get_inputs()[0].name
    run = session.run

    def call(x: np.ndarray) -> np.ndarray:
        return run(None, {name: x[None]})[0][0]

    return call, f"onnxruntime {ort.__version__}"


def torch_engine(net: Any) -> tuple[Call | None, str]:
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None, "torch not installed (pip install -e '.[bench]')"
    layers = []
    for mid in net.order:
        mod = net.modules[mid]
        layer = _torch_layer(torch, mod)
        if layer is None:
            return None, f"torch: no equivalent written for {mod.type_name}"
        layers.extend(layer)
    model = torch.nn.Sequential(*layers).eval()

    def call(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x[None])).numpy()[0]

    return call, f"torch {torch.__version__.split('+')[0]} ({torch.get_num_threads()} threads)"


def _torch_layer(torch: Any, mod: Any) -> list[Any] | None:
    nn, t = torch.nn, mod.type_name
    if t in ("Input", "Output"):
        return []
    if t == "Linear":
        lin = nn.Linear(mod.n_in, mod.n_out)
        _copy_params(torch, lin, mod)
        return [nn.Flatten(1), lin]
    if t == "Convolution" and mod.nd == 2:
        conv = nn.Conv2d(mod.n_in, mod.n_out, mod.k, mod.stride, mod.pad)
        _copy_params(torch, conv, mod)
        return [conv]
    if t == "MaxPooling" and mod.nd == 2 and max(mod.n_next, 1) == 1 and -1 not in mod.win:
        stride = tuple(k if s in (None, -1) else s for k, s in zip(mod.win, mod.strides,
                                                                     strict=True))
        return [nn.MaxPool2d(mod.win, stride, mod.pads)]
    simple = {"ReLU": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh}
    if t in simple:
        return [simple[t]()]
    if t in ("Softmax", "LogSoftmax"):
        return [(nn.Softmax if t == "Softmax" else nn.LogSoftmax)(dim=1)]
    return None


def _copy_params(torch: Any, layer: Any, mod: Any) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(mod.params["weight"], np.float32)))
        layer.bias.copy_(torch.from_numpy(np.asarray(mod.params["bias"], np.float32)))

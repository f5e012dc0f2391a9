"""Developer script: write tests/fixtures/pytorch_cnn/ — a small CNN exported by PyTorch's own
ONNX exporter, an input batch and PyTorch's output — so the import test runs without torch.

Run from the repository root with torch installed: ``python tools/make_pytorch_fixture.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pytorch_cnn"


def main() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Linear(36, 8), nn.BatchNorm1d(8),
        nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 5), nn.LogSoftmax(dim=1)).eval()
    with torch.no_grad():
        model[7].running_mean.uniform_(-0.5, 0.5)
        model[7].running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 1, 8, 8)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=17)
    with torch.no_grad():
        want = model(x).numpy()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "model.onnx").write_bytes(buf.getvalue())
    np.save(OUT / "input.npy", x.numpy())
    np.save(OUT / "output.npy", want)
    (OUT / "README.md").write_text(
        "A small CNN (Conv, BatchNorm2d, ReLU, MaxPool, AvgPool, Flatten, Linear, BatchNorm1d, "
        "Tanh, Dropout, Linear, LogSoftmax) exported by PyTorch "
        f"{torch.__version__} (torch.onnx.export, opset 17), a 3-sample input and PyTorch's "
        "output. Regenerate with `python tools/make_pytorch_fixture.py`.\n")


if __name__ == "__main__":
    main()

"""Developer script: (re)build the ``mnist-biglittle`` and ``mnist-cascade`` examples.

Both are trained on samples [0, 9000) of the bundled MNIST set, each with one ``dianne``
command (printed as it runs), so the held-back samples [9000, 10000) measure them:

* ``mnist-biglittle``: ``dianne biglittle create lenet --priority 0,1,2 --little cnn ...``
  takes the bundled trained LeNet as the big network (``--big-epochs 15`` trains it first when
  the example ships without weights), trains a ~5k-parameter CNN on 0, 1, 2 + "other" as the
  little one, and writes the Big-Little network.
* ``mnist-cascade``: the topology below (three exits: pooled-input MLP, first convolution block
  + linear, the full LeNet), then ``dianne cascade train``.

Not installed; run from the repository root: ``python tools/make_biglittle_examples.py``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli import main  # noqa: E402
from engine.builder import NetworkBuilder  # noqa: E402
from engine.cascade import CascadePolicy  # noqa: E402
from engine.description import read_network, write_network  # noqa: E402
from engine.layout import Layout, write_layout  # noqa: E402
from engine.topology import link, topological_order  # noqa: E402

OUT = ROOT / "resources" / "examples"
DIGITS = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
TRAIN = ["--dataset", "mnist", "--range", "0,9000", "--no-progress"]


def uid(k: int) -> str:
    return f"ca5cade0-0000-4000-8000-{k:012x}"


def cascade_topology():
    b = NetworkBuilder("mnist-cascade", {"description": "MNIST early exit: 3 exits (pooled-input "
                                         "MLP, conv block + linear, LeNet), trained on samples "
                                         "0-8999 of the bundled set"})
    k = iter(range(1, 100))

    def add(type_name, name=None, **props):
        return b.add(type_name, name=name, id=uid(next(k)), **props)

    inp = add("Input", dims="1,28,28")
    d1 = add("Duplicate")
    e1 = [add("MaxPooling", width=2, height=2), add("Linear", input=196, output=32),
          add("ReLU"), add("Linear", input=32, output=10), add("LogSoftmax"),
          add("Output", name="exit1", labels=DIGITS)]
    trunk = [add("Convolution", noInputPlanes=1, noOutputPlanes=6, kernelWidth=5,
                 kernelHeight=5, padX=2, padY=2), add("ReLU"),
             add("MaxPooling", width=2, height=2)]
    d2 = add("Duplicate")
    e2 = [add("Linear", input=1176, output=10), add("LogSoftmax"),
          add("Output", name="exit2", labels=DIGITS)]
    e3 = [add("Convolution", noInputPlanes=6, noOutputPlanes=16, kernelWidth=5, kernelHeight=5),
          add("ReLU"), add("MaxPooling", width=2, height=2), add("Linear", input=400, output=120),
          add("ReLU"), add("Linear", input=120, output=84), add("ReLU"),
          add("Linear", input=84, output=10), add("LogSoftmax"),
          add("Output", name="exit3", labels=DIGITS)]
    b.chain(inp, d1, *e1)
    b.chain(d1, *trunk, d2, *e2)
    b.chain(d2, *e3)
    return CascadePolicy(["exit1", "exit2", "exit3"], [0.99, 0.99]).attach(b.build())


def layered_layout(folder: Path) -> None:
    """Columns by depth, one row per branch (the order modules are first reached in)."""
    desc = read_network(folder)
    succ, pred, _ = link(desc)
    depth: dict[str, int] = {}
    row: dict[str, int] = {}
    rows = 0
    for m in topological_order(list(desc.modules), succ, pred):
        depth[m] = max((depth[p] + 1 for p in pred[m]), default=0)
        parent = pred[m][0] if pred[m] else None
        if parent is None or succ[parent].index(m) > 0:
            row[m] = rows
            rows += 1
        else:
            row[m] = row[parent]
    pos = {m: (60.0 + 150 * depth[m], 60.0 + 140 * row[m]) for m in desc.modules}
    write_layout(Layout(positions=pos), folder)


def run(argv: list[str]) -> None:
    print("dianne " + " ".join(argv), flush=True)
    if main(argv) != 0:
        raise SystemExit(f"failed: dianne {' '.join(argv)}")


def build(name: str, make) -> None:
    with tempfile.TemporaryDirectory(prefix=f"make_{name}_") as tmp:
        work = Path(tmp) / name
        make(work)
        layered_layout(work)
        target = OUT / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(work, target)
    print(f"wrote {target}")


def make_biglittle(work: Path) -> None:
    lenet = OUT / "lenet"
    trained = any(len(p.name) >= 36 and p.name[8] == "-" for p in lenet.iterdir())
    big = [] if trained else ["--big-epochs", "15"]
    run(["biglittle", "create", str(lenet), *big, "--priority", "0,1,2", "--little", "cnn",
         "--epochs", "20", "--threshold", "0.9", "--name", "mnist-biglittle", "--out", str(work),
         *TRAIN])


def make_cascade(work: Path) -> None:
    write_network(cascade_topology(), work)
    run(["cascade", "train", str(work), "--epochs", "20", *TRAIN])


if __name__ == "__main__":
    which = sys.argv[1:] or ["mnist-biglittle", "mnist-cascade"]
    if "mnist-cascade" in which:
        build("mnist-cascade", make_cascade)
    if "mnist-biglittle" in which:
        build("mnist-biglittle", make_biglittle)

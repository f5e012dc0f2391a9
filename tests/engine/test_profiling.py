"""Per-module profiles: output and parameter bytes agree with shape inference, forks report
what each successor receives, timings are positive and cached per module configuration."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine import profiling
from engine.builder import NetworkBuilder, sequential
from engine.description import read_network
from engine.errors import ShapeError
from engine.shapes import infer_shapes
from tests.conftest import ROOT


def test_lenet_bytes_agree_with_shape_inference():
    desc = read_network(ROOT / "resources" / "examples" / "lenet")
    prof = profiling.profile_modules(desc, repeat=3)
    shapes = infer_shapes(desc)
    assert list(prof) == list(shapes.modules)  # execution order
    for mid, p in prof.items():
        out = shapes[mid].out_shape
        outs = out if isinstance(out, list) else [out]
        assert p["out_bytes"] == 4 * sum(int(np.prod(o)) for o in outs), p["type"]
        assert p["param_bytes"] == 4 * shapes[mid].params
        assert p["forward_s"] > 0
        assert p["type"] == desc.modules[mid].type
        assert set(p["next_bytes"]) == set(desc.modules[mid].next)
    assert profiling.total_forward_s(prof) == pytest.approx(
        sum(p["forward_s"] for p in prof.values()), rel=1e-12)


def test_split_successors_get_their_slices():
    b = NetworkBuilder("split")
    i = b.add("Input", dims="10")
    s = b.add("Split", dim=0, split="4")
    la, lb = b.add("Linear", input=4, output=3), b.add("Linear", input=6, output=3)
    acc, o = b.add("Accumulate"), b.add("Output")
    b.chain(i, s)
    b.connect(s, la).connect(s, lb).connect(la, acc).connect(lb, acc).connect(acc, o)
    prof = profiling.profile_modules(b.build(), repeat=2)
    assert prof[s]["next_bytes"] == {la: 16, lb: 24}
    assert prof[s]["out_bytes"] == 40
    assert prof[la]["param_bytes"] == 4 * (4 * 3 + 3)


def test_duplicate_sends_the_whole_tensor_to_each_successor():
    b = NetworkBuilder("dup")
    i, d = b.add("Input", dims="6"), b.add("Duplicate")
    la, lb = b.add("Linear", input=6, output=3), b.add("Linear", input=6, output=2)
    c, o = b.add("Concat", dim=0), b.add("Output")
    b.chain(i, d)
    b.connect(d, la).connect(d, lb).connect(la, c).connect(lb, c).connect(c, o)
    prof = profiling.profile_modules(b.build(), repeat=2)
    assert prof[d]["next_bytes"] == {la: 24, lb: 24}
    assert prof[c]["out_bytes"] == 20


def test_timings_are_cached_per_configuration():
    profiling.clear_cache()
    desc = sequential("twins", [("Linear", {"input": 8, "output": 8}), ("ReLU", {}),
                                ("Linear", {"input": 8, "output": 8}), ("ReLU", {})],
                      input_dims=(8,))
    first = profiling.profile_modules(desc, repeat=5)
    relus = [p["forward_s"] for p in first.values() if p["type"] == "ReLU"]
    linears = [p["forward_s"] for p in first.values() if p["type"] == "Linear"]
    assert relus[0] == relus[1] and linears[0] == linears[1]  # one measurement each
    again = profiling.profile_modules(desc, repeat=5)
    assert [p["forward_s"] for p in again.values()] == [p["forward_s"] for p in first.values()]
    # Input, Linear, ReLU, Output: four configurations
    assert len(profiling._CACHE) == 4
    profiling.clear_cache()
    assert not profiling._CACHE


def test_input_shape_for_an_input_without_dims_and_errors():
    desc = sequential("nodims", [("Linear", {"input": 12, "output": 2})])
    with pytest.raises(ShapeError, match="dims"):
        profiling.profile_modules(desc)
    prof = profiling.profile_modules(desc, (1, 3, 4), repeat=2)
    assert next(iter(prof.values()))["out_bytes"] == 48
    with pytest.raises(ValueError, match="repeat"):
        profiling.profile_modules(desc, (1, 3, 4), repeat=0)


def test_two_inputs_and_a_wrap_that_slows_every_call():
    b = NetworkBuilder("two-in")
    i1, i2 = b.add("Input", dims="3"), b.add("Input", dims="5")
    c, o = b.add("Concat", dim=0), b.add("Output")
    b.connect(i1, c).connect(i2, c).connect(c, o)
    desc = b.build()

    def wrap(fn):  # a module function that also sleeps 2 ms: every timing includes it
        def slow(x):
            time.sleep(0.002)
            return fn(x)
        return slow

    profiling.clear_cache()
    prof = profiling.profile_modules(desc, repeat=2, warmup=0, wrap=wrap)
    assert prof[c]["out_bytes"] == 32 and prof[i2]["out_bytes"] == 20
    assert all(p["forward_s"] >= 0.002 for p in prof.values())
    wrapped = len(profiling._CACHE)
    assert wrapped == 4  # two Input shapes, Concat, Output
    profiling.profile_modules(desc, repeat=2, warmup=0)
    assert len(profiling._CACHE) == 2 * wrapped  # plain timings are cached apart

"""Pure parts of the placement benchmarks: which placements count as layer-boundary splits,
and where the OverFeat experiment cuts (after the fifth convolution's ReLU and pooling)."""

from __future__ import annotations

from app.bench.overfeat import _links, first_five_layers
from app.bench.placement import _at_layer_boundaries
from app.planner import PlacementModel
from engine import zoo
from engine.topology import link, topological_order


def _order(desc):
    succ, pred, _ = link(desc)
    return topological_order(list(desc.modules), succ, pred)


def test_overfeat_cut_after_the_fifth_convolution_block():
    desc = zoo.overfeat_fast()
    order = _order(desc)
    k = first_five_layers(desc, order)
    types = [desc.modules[m].type for m in order]
    assert types[:k].count("Convolution") == 5 and types[k - 1] == "MaxPooling"
    assert types[k] == "Linear"
    assert _links("1000:0.2, 100") == [(1000.0, 0.2), (100.0, 0.0)]


def test_layer_boundary_splits_of_overfeat():
    desc = zoo.overfeat_fast()
    profile = {m: {"forward_s": 1e-3, "out_bytes": 4, "param_bytes": 0} for m in desc.modules}
    model = PlacementModel(desc, {"d": profile, "s": profile})
    splits = model.split_placements(["d", "s"])
    kept = [p for p in splits if _at_layer_boundaries(desc, model.order, p)]
    assert len(splits) == len(desc.modules) + 1
    # before each of the 8 weighted layers and before the Output, plus all-on-one
    assert len(kept) == 8 + 1 + 2
    for p in kept:
        cut = [i for i in range(1, len(model.order))
               if p[model.order[i]] != p[model.order[i - 1]]]
        assert all(desc.modules[model.order[i]].type in ("Linear", "Convolution", "Output")
                   for i in cut)

"""The registry describes every type for the palette and property dialogs: DIANNE names,
categories, trainable flags, and typed properties with defaults and required marks."""

from __future__ import annotations

import pytest

from engine.errors import ModuleError
from engine.modules import CATEGORIES, REGISTRY, create_module, module_types

REQUIRED_TYPES = """Input Output Linear Convolution FullConvolution MaxPooling MaxUnpooling
AvgPooling Reshape Zeropad Narrow Invert Sigmoid Tanh ReLU LeakyReLU PReLU ELU SELU SoftPlus
Softmax LogSoftmax Threshold Duplicate Split Concat Accumulate Average Multiply Normalization
Denormalization BatchNormalization Dropout DropPath LRN Scale Frame""".split()

TRAINABLE = {"Linear", "Convolution", "FullConvolution", "BatchNormalization", "PReLU",
             "Normalization", "Denormalization"}


def test_all_issue_types_are_registered():
    assert sorted(set(REQUIRED_TYPES) - set(REGISTRY)) == []


def test_trainable_flags_follow_the_original():
    flagged = {t.type_name for t in module_types() if t.trainable}
    assert flagged == TRAINABLE


def test_categories_are_dianne_categories():
    for info in module_types():
        assert info.category in CATEGORIES
    cats = {t.type_name: t.category for t in module_types()}
    assert cats["Duplicate"] == "Fork" and cats["Concat"] == "Join"
    assert cats["Dropout"] == "Regularization" and cats["Input"] == "Input-Output"
    assert cats["ReLU"] == "Activation" and cats["Normalization"] == "Preprocessing"


def test_properties_are_typed_with_required_marks():
    lin = next(t for t in module_types() if t.type_name == "Linear")
    assert [(p.name, p.kind, p.required) for p in lin.props] == [
        ("input", "int", True), ("output", "int", True)]
    leaky = next(t for t in module_types() if t.type_name == "LeakyReLU")
    assert leaky.props[0].name == "leakyness" and leaky.props[0].default == pytest.approx(0.01)


def test_constructor_takes_json_strings_or_typed_values():
    a = create_module("Linear", input="784", output="10")
    b = create_module("Linear", input=784, output=10)
    assert a.cfg == b.cfg == {"input": 784, "output": 10}


def test_missing_required_and_bad_values_name_the_module():
    with pytest.raises(ModuleError, match="required property 'output'"):
        create_module("Linear", id="m1", input="3")
    with pytest.raises(ModuleError, match=r"m2.*'input'.*Received: 'x'"):
        create_module("Linear", id="m2", input="x", output="3")
    with pytest.raises(ModuleError, match="Lineer"):
        create_module("Lineer")


def test_empty_string_means_unset():
    mod = create_module("LeakyReLU", leakyness="")
    assert mod.cfg["leakyness"] == pytest.approx(0.01)

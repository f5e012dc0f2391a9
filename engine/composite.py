"""Composite modules (spec 8.1): a sub-network used as one module type, with parameters.

A composite type is a folder ``<TypeName>/`` holding ``composite.txt`` (one property a line:
``label,key,java.lang.Integer|Float|String``), ``modules.txt`` (a network with one Input and one
Output) and ``layout.txt``. An instance substitutes its property values for every ``${key}`` in
the sub-modules' types and properties, evaluates the arithmetic in values that held a ``$``
(:func:`engine.expr.evaluate`; an integer property gets the truncated result), and runs the
sub-network with the ordinary executor. Its parameters are ONE flat vector: the sub-modules
that have parameters, in the Java ``HashMap`` iteration order of their UUIDs, each in its own
weight-file layout — so a composite's weight file is the original's.

Where types come from: the composites bundled in ``resources/composites`` (the original's
eight), then every folder added with :func:`add_composite_path` (a repository's
``composites/``, see :func:`add_repository`), and — as the original's factory does when a name
is no composite — a repository network of that name (network-as-module). A type is registered
in the module registry when first asked for (``engine.modules.module_class``), or all at once by
:func:`register_composites` (what the palette calls).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from engine.description import NetworkDescription, java_hashmap_order, read_network
from engine.errors import DianneError, FormatError, ModuleError
from engine.expr import evaluate
from engine.fileio import read_text
from engine.modules import REGISTRY, Module, Prop, module_class, register

JAVA_KINDS = {"java.lang.Integer": "int", "java.lang.Float": "float", "java.lang.String": "str",
              "java.lang.Double": "float", "java.lang.Boolean": "bool"}
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_paths: list[Path] = []
_repositories: list[Path] = []


@dataclass(frozen=True)
class CompositeSpec:
    """One composite type as read from its folder."""

    type_name: str
    folder: Path
    props: tuple[Prop, ...]
    description: NetworkDescription  # with the ${key} placeholders
    kinds: tuple[str, ...] = ()  # java class of each prop, as written


def builtin_dir() -> Path:
    return Path(str(resources.files("resources") / "composites"))


def read_composite(folder: str | os.PathLike[str]) -> CompositeSpec:
    """Read ``composite.txt`` (may be absent: no properties) and ``modules.txt``."""
    folder = Path(folder)
    desc = read_network(folder)
    props, kinds = [], []
    ctxt = folder / "composite.txt"
    if ctxt.is_file():
        for n, line in enumerate(read_text(ctxt, "the composite file").splitlines(), 1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 3 or parts[2] not in JAVA_KINDS or not parts[1]:
                raise FormatError(f"{ctxt}:{n}: expected 'label,key,java class' with a class "
                                  f"of {', '.join(JAVA_KINDS)}. Received: {line!r}")
            props.append(Prop(parts[1], JAVA_KINDS[parts[2]], doc=parts[0]))
            kinds.append(parts[2])
    ins = [m for m in desc.modules.values() if m.type == "Input"]
    outs = [m for m in desc.modules.values() if m.type == "Output"]
    if len(ins) != 1 or len(outs) != 1:
        raise FormatError(f"{folder / 'modules.txt'}: a composite needs exactly one Input and one "
                          f"Output. Received: {len(ins)} Input, {len(outs)} Output")
    return CompositeSpec(folder.name, folder, tuple(props), desc, tuple(kinds))


def _substitute_value(spec: CompositeSpec, md: Any, key: str, value: str,
                      values: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise FormatError(f"{spec.folder / 'modules.txt'}: module {md.id} property {key!r} "
                              f"uses ${{{m.group(1)}}}, which {spec.type_name} does not declare "
                              f"in composite.txt. Received: {value!r}")
        return values[m.group(1)]

    return _PLACEHOLDER.sub(repl, value)


def instantiate(spec: CompositeSpec, values: dict[str, str]) -> NetworkDescription:
    """The sub-network with the instance's property values filled in (a new description)."""
    desc = spec.description.copy()
    where = spec.folder / "modules.txt"
    for md in desc.modules.values():
        if "$" in md.type:
            md.type = _substitute_value(spec, md, "type", md.type, values).strip()
        for key, raw in list(md.properties.items()):
            if "$" not in raw:
                continue
            text = _substitute_value(spec, md, key, raw, values)
            try:
                kind = next((p.kind for p in module_class(md.type).props if p.name == key), None)
            except ModuleError:
                kind = None  # unknown type: the executor reports it, naming the module
            try:
                md.properties[key] = evaluate(text, kind)
            except ValueError as exc:
                raise FormatError(f"{where}: module {md.id} property {key!r}: {exc}. "
                                  f"Received: {text!r}") from None
    desc.name = spec.type_name
    return desc


class CompositeModule(Module):
    """Base of the generated composite classes: one sub-network, one flat parameter vector."""

    category = "Composite"
    trainable = True
    spec: ClassVar[CompositeSpec]

    def setup(self) -> None:
        from engine.backends import NUMPY, get_backend
        from engine.graph import Network

        values = {p.name: p.format(self.cfg.get(p.name)) for p in self.props}
        self.description = instantiate(self.spec, values)
        backend = NUMPY if self.xp is np else get_backend("cupy")
        try:
            self.net = Network(self.description, backend, self.dtype, seed=0)
        except DianneError as exc:
            raise self.fail(f"cannot build its sub-network: {exc}", values) from None
        self.input_id, self.output_id = self.net.inputs[0], self.net.outputs[0]
        # every Memory inside, those of nested recurrent composites (an LSTM in it) included
        self.memories = [m for sub in self.net.modules.values() for m in (
            [sub] if getattr(sub, "recurrent", False) else getattr(sub, "memories", ()))]
        # The flat vector: parameterised sub-modules in Java HashMap order of their UUIDs.
        self.parts = [m for m in java_hashmap_order(list(self.description.modules), "uuid")
                      if self.net.modules[m].params]
        for mid in self.parts:
            sub = self.net.modules[mid]
            for pname, arr in sub.params.items():
                self.params[f"{mid}.{pname}"] = arr  # shared arrays: sub-modules update them
                if pname in sub.grads:
                    self.grads[f"{mid}.{pname}"] = sub.grads[pname]
        self._shapes: dict[Any, Any] = {}

    def reset(self, rng: np.random.Generator | int | None = None) -> None:
        self.net.reset(rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng))

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        self.net.train(mode)
        return self

    def reset_state(self) -> None:
        """Start a new sequence (recurrent composites: every Memory back to zeros)."""
        for mem in self.memories:
            mem.reset_state()

    def forward(self, x: Any) -> Any:
        for mem in self.memories:  # recurrent composites take (features) or (N, features)
            batch = int(x.shape[0]) if x.ndim == 2 else None
            if mem.state is None or mem.state.ndim != x.ndim or (
                    batch is not None and mem.state.shape[0] != batch):
                mem.reset_state(batch=batch)
        return self.net.forward(x)

    def backward(self, grad_output: Any) -> Any:
        grads = self.net.backward(grad_output)
        return grads[self.input_id]

    def _infer(self, in_shape: Any) -> Any:
        from engine.shapes import infer_shapes

        key = tuple(in_shape)
        if key not in self._shapes:
            shapes = infer_shapes(self.description, {self.input_id: key})
            # Orphans (Residual_b has an unconnected Multiply) do not matter; the Output does.
            bad = next((s for s in shapes.modules.values() if s.error), None)
            if not shapes[self.output_id].ok and bad is not None:
                raise self.shape_fail(f"sub-module {bad.type} '{bad.name}': {bad.error}", key)
            self._shapes[key] = shapes
        return self._shapes[key]

    def output_shape(self, in_shape: Any) -> Any:
        return self._infer(in_shape)[self.output_id].out_shape

    def macs(self, in_shape: Any) -> int:
        return self._infer(in_shape).macs

    def to_onnx(self, ctx: Any, inputs: list[str]) -> str:
        """Inline the sub-network into the ONNX graph being built (engine.onnx.export)."""
        from engine.onnx.export import export_network

        g = ctx.g
        saved, g.prefix = g.prefix, f"{g.prefix}{ctx.base}/"
        try:
            out = export_network(g, self.net, {self.input_id: inputs[0]},
                                 {self.input_id: ctx.in_shape})
        finally:
            g.prefix = saved
        return out[self.output_id][0]


def composite_class(spec: CompositeSpec) -> type[CompositeModule]:
    """A module class for ``spec`` (not registered)."""
    doc = f"Composite {spec.type_name} ({spec.folder})"
    return type(re.sub(r"\W", "_", f"Composite_{spec.type_name}"), (CompositeModule,), {
        "type_name": spec.type_name, "props": spec.props, "spec": spec, "doc": doc,
        "example": {}})


def register_composite(folder: str | os.PathLike[str]) -> type[CompositeModule]:
    """Read the composite in ``folder`` and register it under its folder name."""
    spec = read_composite(folder)
    known = REGISTRY.get(spec.type_name)
    if known is not None and not issubclass(known, CompositeModule):
        raise FormatError(f"{spec.folder}: a composite cannot take the name of the built-in "
                          f"type {spec.type_name}. Received: {spec.type_name}")
    cls = composite_class(spec)
    register(cls)
    return cls


def add_composite_path(folder: str | os.PathLike[str]) -> None:
    """Also look for composite types in ``folder`` (one sub-folder per type)."""
    path = Path(folder)
    if path not in _paths:
        _paths.append(path)


def add_repository(root: str | os.PathLike[str]) -> None:
    """Use a repository's ``composites/`` folder, and its networks as network-as-module."""
    root = Path(root)
    add_composite_path(root / "composites")
    if root not in _repositories:
        _repositories.append(root)


def composite_paths() -> list[Path]:
    return [*_paths, builtin_dir()]  # users' folders first: they may override


def _is_composite_dir(folder: Path) -> bool:
    return (folder / "modules.txt").is_file()


def resolve_composite(type_name: str) -> type[CompositeModule] | None:
    """Find ``type_name`` among the composite folders (then repository networks), register it
    and return its class; None when there is no such folder."""
    if not type_name or any(c in type_name for c in "/\\\0") or type_name.startswith("."):
        return None
    for root in [*composite_paths(), *_repositories]:
        folder = root / type_name
        if _is_composite_dir(folder):
            return register_composite(folder)
    return None


def register_composites() -> list[str]:
    """Register every composite type found (bundled and added folders); returns their names.
    A folder that cannot be read is skipped with its error logged, not raised."""
    import logging

    names = []
    for root in composite_paths():
        for folder in sorted(root.iterdir()) if root.is_dir() else ():
            if not _is_composite_dir(folder) or folder.name in names:
                continue
            try:
                register_composite(folder)
                names.append(folder.name)
            except DianneError as exc:
                logging.getLogger(__name__).warning("composite %s skipped: %s", folder, exc)
    return names


def unregister_composites() -> None:
    """Forget every registered composite type (they are found again on first use)."""
    from engine.modules import unregister

    for name, cls in list(REGISTRY.items()):
        if issubclass(cls, CompositeModule):
            unregister(name)


def load_parts(net: Any, repository: Any, loaded: Iterable[str] = ()) -> list[str]:
    """The original's fallback for a composite without its own weight file: each sub-module's
    vector is read by its own UUID, first tagged with the composite's UUID, then untagged
    (ensembles of trained networks). ``net`` is a :class:`engine.graph.Network`, ``loaded`` the
    module ids that already got a file; returns the composites filled (wholly or in part)."""
    done = set(loaded)
    filled = []
    for mid, mod in net.modules.items():
        if not isinstance(mod, CompositeModule) or mid in done:
            continue
        hit = False
        for part in mod.parts:
            sub = mod.net.modules[part]
            size = sub.parameter_size()
            flat = (repository.read_module_weights(part, (mid,), size)
                    if repository.find_weights(part, (mid,)) is not None
                    else repository.read_module_weights(part, (), size))
            if flat is not None:
                sub.set_flat(flat)
                hit = True
        if hit:
            filled.append(mid)
    return filled

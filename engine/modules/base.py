"""The module contract (torch7 ``nn`` style) and the registry of DIANNE module types.

A module is configured by its DIANNE properties (strings in ``modules.txt``, typed here through
:class:`Prop`), owns its parameters in ``params`` (persisted, in the order of the DIANNE weight
file) and their gradients in ``grads``. ``forward`` returns the output and keeps what
``backward`` needs; ``backward`` returns the gradient w.r.t. the input and *adds* into
``grads``. Join modules take a list of inputs (in ``prev`` order) and return a list of input
gradients; fork modules return a list of outputs (one per ``next``) and take a list of output
gradients (``None`` where a successor sent none). The registry maps the DIANNE type name to the
class; the editor palette and the property dialogs are generated from it.
"""

from __future__ import annotations

import math
import uuid as _uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from engine.errors import ModuleError, ShapeError, module_label

Shape = tuple[int, ...]

KINDS = ("int", "float", "bool", "str", "ints", "floats")


@dataclass(frozen=True)
class Prop:
    """One DIANNE property of a module type: JSON key, value kind, default, required flag."""

    name: str
    kind: str = "int"
    default: Any = None
    required: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"Prop {self.name}: kind must be one of {KINDS}. Received: {self.kind}"
            )

    def parse(self, raw: Any) -> Any:
        """Turn a JSON value (string in the file, or a typed Python value) into this kind.

        ``None`` and the empty string mean "not set" (DIANNE's ``hasProperty``) and give the
        default. Raises ``ValueError`` with a short reason on a bad value.
        """
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            return self.default
        kind = self.kind
        if kind == "str":
            return str(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no"):
                return False
            raise ValueError("expected true or false")
        if kind in ("ints", "floats"):
            items = raw if isinstance(raw, list | tuple) else str(raw).replace(";", ",").split(",")
            conv = _to_int if kind == "ints" else _to_float
            return tuple(conv(v) for v in items if str(v).strip() != "")
        return _to_int(raw) if kind == "int" else _to_float(raw)

    def format(self, value: Any) -> str:
        """Return the string DIANNE writes for ``value`` (all property values are strings)."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list | tuple):
            return ",".join(self.format(v) for v in value)
        if isinstance(value, float) and value.is_integer() and self.kind == "int":
            return str(int(value))
        return str(value)


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected an integer")
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        value = float(text)  # "3.0" is accepted as 3, "3.5" is not
        if not value.is_integer():
            raise ValueError("expected an integer") from None
        return int(value)


def _to_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected a number")
    value = float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
    if math.isnan(value):
        raise ValueError("expected a number, not NaN")
    return value


# The largest tensor a network file may declare: one module's parameters are one weight file,
# whose header is an int32 count (spec 3.3). Also bounds the sample an Input declares.
MAX_TENSOR_VALUES = 2**31 - 1
_CHECK_MEMORY_FROM = 1 << 24  # values; below this a parameter is allocated without asking


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (Linux), else ``None``."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# Properties every module may carry in a file without them meaning anything to the runtime.
INFORMATIONAL = ("name", "category", "trainable")


class Module:
    """Base class of every DIANNE module type (see the module docstring for the contract)."""

    type_name: ClassVar[str] = ""
    category: ClassVar[str] = "Layer"
    props: ClassVar[tuple[Prop, ...]] = ()
    trainable: ClassVar[bool] = False
    join: ClassVar[bool] = False
    fork: ClassVar[bool] = False
    # Smallest valid configuration for tests and docs. Every registered type has one; the
    # registry-wide harnesses (gradient check, batch consistency, JSON round trip) use it.
    # Keys: "props" (JSON properties), "inputs" (list of input shapes, one per prev; for a join
    # several), optional "n_next" (successors, for forks), "training" (bool), "make_inputs"
    # (callable rng -> list of arrays, when random normal inputs will not do), "check_inputs"
    # (indices of inputs to gradient-check, default all), "check_outputs" (indices of a fork's
    # outputs that carry gradient, default all), "batch" (False: skip the batch-consistency
    # check), "grad" (False: no backward exists, e.g. Frame).
    example: ClassVar[dict[str, Any]] = {}
    doc: ClassVar[str] = ""

    def __init__(
        self,
        id: str | None = None,
        name: str | None = None,
        xp: Any = None,
        dtype: Any = np.float32,
        **properties: Any,
    ) -> None:
        self.id = id or str(_uuid.uuid4())
        self.name = name or self.type_name
        self.xp = xp if xp is not None else np
        self.dtype = np.dtype(dtype)
        self.training = False
        # False while the executor runs a backward whose gradient w.r.t. this module's input
        # nobody uses (it reads an Input and the caller wants no input gradients): modules with
        # an expensive input gradient (Linear, Convolution) may then return None.
        self.grad_input_needed = True
        # Stochastic modules (Dropout, DropPath) draw from this; tests reseed it.
        self.rng = np.random.default_rng()
        self.n_next = 1
        self.n_prev = 1
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.cfg: dict[str, Any] = {}
        declared = {p.name: p for p in self.props}
        for prop in self.props:
            raw = properties.get(prop.name)
            try:
                value = prop.parse(raw)
            except (TypeError, ValueError) as exc:
                raise self.fail(
                    f"property '{prop.name}' is not a valid {prop.kind}: {exc}", raw
                ) from None
            if value is None and prop.required:
                raise self.fail(f"required property '{prop.name}' is missing", raw)
            self.cfg[prop.name] = value
        # Undeclared keys (informational ones, or keys the original also ignored) are kept so a
        # module can be written back unchanged, but mean nothing here.
        self.extra = {k: v for k, v in properties.items() if k not in declared}
        self.setup()

    # ----------------------------------------------------------------- hooks for subclasses
    def setup(self) -> None:
        """Validate ``cfg`` and allocate parameters with :meth:`add_param`."""

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Return fresh host values for the parameters (DIANNE's default initialisation)."""
        return {}

    def forward(self, x: Any) -> Any:
        raise NotImplementedError(f"{self.type_name}.forward")

    def backward(self, grad_output: Any) -> Any:
        raise self.fail("has no backward pass", None)

    def output_shape(self, in_shape: Any) -> Any:
        """Shape of one sample's output (no batch axis) for one sample's input shape."""
        return in_shape

    def macs(self, in_shape: Any) -> int:
        """Multiply-accumulates of one forward pass of one sample."""
        return 0

    # ----------------------------------------------------------------- provided behaviour
    @property
    def label(self) -> str:
        return module_label(self.id, self.type_name, self.name)

    def fail(
        self, message: str, received: Any, cls: type[ModuleError] = ModuleError
    ) -> ModuleError:
        """Build an error naming this module; ``raise self.fail(...)``."""
        return cls(f"{self.label}: {message}. Received: {received!r}")

    def shape_fail(self, message: str, received: Any) -> ShapeError:
        return ShapeError(f"{self.label}: {message}. Received: {received!r}")

    def add_param(self, pname: str, shape: Shape, learn: bool = True) -> None:
        """Allocate a persisted parameter (zeros); ``learn`` also allocates its gradient.

        The size a file declares is checked before anything is allocated: one module's
        parameters must fit one weight file, and a large tensor must fit the free memory.
        """
        n = math.prod(shape)
        if min(shape, default=1) < 0:
            raise self.fail(f"parameter '{pname}' would have a negative size", tuple(shape))
        total = self.parameter_size() + n
        if total > MAX_TENSOR_VALUES:
            raise self.fail(f"parameters too large: {total} values, a weight file holds at most "
                            f"{MAX_TENSOR_VALUES}", tuple(shape))
        if n >= _CHECK_MEMORY_FROM:
            # the parameter, its gradient, and the float64 initial values drawn on the host
            need = n * (self.dtype.itemsize * (2 if learn else 1) + 8)
            free = available_memory()
            if free is not None and need > free:
                raise self.fail(f"parameter '{pname}' too large for the free memory ({need} "
                                f"bytes needed, {free} available)", tuple(shape))
        self.params[pname] = self.xp.zeros(shape, dtype=self.dtype)
        if learn:
            self.grads[pname] = self.xp.zeros(shape, dtype=self.dtype)

    def reset(self, rng: np.random.Generator | int | None = None) -> None:
        """Re-initialise the parameters on the host with a seeded generator, then move them."""
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        for pname, value in self.init_params(rng).items():
            target = self.params[pname]
            if tuple(value.shape) != tuple(target.shape):
                raise self.fail(f"init of '{pname}' has the wrong shape", value.shape)
            target[...] = self.xp.asarray(value, dtype=self.dtype)

    def zero_grad(self) -> None:
        for grad in self.grads.values():
            grad.fill(0)

    def parameter_size(self) -> int:
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    def get_flat(self) -> np.ndarray:
        """The parameters as one float32 host vector, in the DIANNE weight-file order."""
        if not self.params:
            return np.zeros(0, dtype=np.float32)
        parts = [np.asarray(_host(p), dtype=np.float32).ravel() for p in self.params.values()]
        return np.concatenate(parts)

    def set_flat(self, flat: Any) -> None:
        """Load parameters from one flat vector in the DIANNE weight-file order."""
        flat = np.asarray(flat, dtype=np.float32).ravel()
        if flat.size != self.parameter_size():
            raise self.fail(
                f"expects {self.parameter_size()} parameter values", f"{flat.size} values"
            )
        offset = 0
        for param in self.params.values():
            n = int(np.prod(param.shape))
            param[...] = self.xp.asarray(flat[offset : offset + n].reshape(param.shape), self.dtype)
            offset += n

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def properties_json(self) -> dict[str, str]:
        """The declared properties as DIANNE writes them (strings; unset ones omitted)."""
        out = {}
        for prop in self.props:
            value = self.cfg.get(prop.name)
            if value is not None:
                out[prop.name] = prop.format(value)
        return out

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.cfg.items() if v is not None)
        return f"{type(self).__name__}({cfg})"

    # Small helpers used by many modules -----------------------------------------------------
    def need_rank(self, x: Any, ranks: Sequence[int], what: str = "input") -> None:
        if x.ndim not in ranks:
            raise self.shape_fail(f"{what} must have {' or '.join(map(str, ranks))} dimensions",
                                  tuple(x.shape))


def _host(array: Any) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array
    get = getattr(array, "get", None)  # cupy arrays
    return get() if callable(get) else np.asarray(array)


def uniform_fan_in(rng: np.random.Generator, shape: Shape, fan_in: int) -> np.ndarray:
    """DIANNE/torch7 default: uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


# --------------------------------------------------------------------------- registry
REGISTRY: dict[str, type[Module]] = {}
CATEGORIES = (
    "Input-Output", "Layer", "Activation", "Fork", "Join", "Preprocessing", "Regularization",
    "Variational", "Composite", "Memory",
)


def register(cls: type[Module]) -> type[Module]:
    """Class decorator: make ``cls`` available under its DIANNE ``type_name``."""
    if not cls.type_name:
        raise ValueError(f"{cls.__name__} has no type_name")
    if cls.category not in CATEGORIES:
        raise ValueError(f"{cls.__name__}: unknown category. Received: {cls.category}")
    REGISTRY[cls.type_name] = cls
    return cls


def unregister(type_name: str) -> None:
    REGISTRY.pop(type_name, None)


def module_class(type_name: str) -> type[Module]:
    try:
        return REGISTRY[type_name]
    except KeyError:
        raise ModuleError(
            f"unknown module type (known: {', '.join(sorted(REGISTRY))}). Received: {type_name!r}"
        ) from None


def create_module(type_name: str, **kwargs: Any) -> Module:
    """Instantiate a registered type: ``create_module("Linear", input=784, output=10)``."""
    return module_class(type_name)(**kwargs)


@dataclass(frozen=True)
class TypeInfo:
    """What the palette and the property dialogs need to know about a module type."""

    type_name: str
    category: str
    trainable: bool
    props: tuple[Prop, ...]
    join: bool
    fork: bool
    doc: str


def module_types(category: str | None = None) -> list[TypeInfo]:
    """Every registered type (optionally of one category), sorted by category then name."""
    infos = [
        TypeInfo(c.type_name, c.category, c.trainable, c.props, c.join, c.fork,
                 (c.doc or (c.__doc__ or "")).strip().split("\n")[0])
        for c in REGISTRY.values()
        if category is None or c.category == category
    ]
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(infos, key=lambda t: (order.get(t.category, 99), t.type_name))


Factory = Callable[..., Module]

"""Linear: y = W x + b with W stored ``[out][in]`` then the bias (DIANNE weight order).

Batch rule of the original: odd-rank input (1-D, or a 3-D image flattened) is one sample,
even-rank input (2-D, or 4-D flattened to ``(N, C*H*W)``) is a batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import blas
from engine.modules.base import Module, Prop, register, uniform_fan_in
from engine.modules.buffers import Slot, bound_or, ones_tail, raw, tailed
from engine.modules.freezing import Freezable


@register
class Linear(Freezable, Module):
    """Fully connected layer.

    Frozen (``Network.eval()``), a small layer whose one-sample input is a ``tailed`` buffer
    (a 1.0 after its last element: what Input, Linear and MaxPooling allocate) keeps the
    weights with the bias as one more column, ``[W | b] @ [x; 1]``: the bias comes with the
    product instead of a separate add. The matrix is kept as ``[W | b]`` for at most
    ``ROW_MAJOR_MAX_OUT`` outputs and transposed, ``[x, 1] @ [W^T; b]``, for more: OpenBLAS's
    one-thread matrix-vector product is quicker in those orientations (measured over 84-1024
    inputs and 10-256 outputs: 0.77 against 1.34 us for 1024 -> 10, 2.2 against 2.5 us for
    400 -> 120)."""

    ROW_MAJOR_MAX_OUT = 32

    type_name = "Linear"
    category = "Layer"
    trainable = True
    owns_output = True  # forward returns its own buffer, which backward never reads
    props = (
        Prop("input", "int", required=True, doc="number of input features"),
        Prop("output", "int", required=True, doc="number of output features"),
    )
    example = {"props": {"input": 6, "output": 4}, "inputs": [(6,)]}

    def setup(self) -> None:
        n_in, n_out = self.cfg["input"], self.cfg["output"]
        if n_in <= 0 or n_out <= 0:
            raise self.fail("input and output must be positive", (n_in, n_out))
        self.n_in, self.n_out = n_in, n_out
        self.add_param("weight", (n_out, n_in))
        self.add_param("bias", (n_out,))
        self._x = None
        self._out = None
        self._slot = Slot()
        self._dot, self._add = raw(self.xp.dot), self.xp.add
        self._act: Module | None = None  # an activation fused by the executor (see fuse)
        self._kept: Any = None  # frozen: [W | b] or [W^T; b] (see the class docstring)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {
            "weight": uniform_fan_in(rng, (self.n_out, self.n_in), self.n_in),
            "bias": uniform_fan_in(rng, (self.n_out,), self.n_in),
        }

    def _flat_input(self, x: Any) -> Any:
        if x.ndim % 2 == 1:  # one sample
            flat = x.reshape(-1)
        else:  # a batch
            flat = x.reshape(x.shape[0], -1)
        if flat.shape[-1] != self.n_in:
            raise self.shape_fail(f"expects {self.n_in} input features", tuple(x.shape))
        return flat

    def _bind(self, x: Any) -> tuple:
        """Everything derived from input ``x``: flat view, output buffer, thread governor, and
        for one small sample the bound runners (without and with the fused activation)."""
        xp = self.xp
        flat = self._flat_input(x)
        w = self.params["weight"]
        dt = np.result_type(flat.dtype, w.dtype)
        shape = (self.n_out,) if flat.ndim == 1 else (flat.shape[0], self.n_out)
        out = self._out
        if out is None or out.shape != shape or out.dtype != dt:
            out = self._out = tailed(xp, shape, dt)
        # A flat view follows x's contents; a copy (x not contiguous) must be redone per call.
        view = xp is not np or np.shares_memory(flat, x)
        rows = 1 if flat.ndim == 1 else flat.shape[0]
        gov = blas.governor(rows * self.n_in * self.n_out)
        mode = 2 if flat.dtype != w.dtype else (0 if flat.ndim == 1 else 1)
        hot = fused = None
        if mode == 0 and view:
            aug = (ones_tail(flat) if self._frozen and xp is np and w.dtype == dt
                   and gov is None else None)
            hot = self._runner(flat, out, x.shape, None, aug, gov)
            if self._act is not None:
                fused = self._runner(flat, out, x.shape, self._act.bind_inplace(out), aug, gov)
        return self._slot.keep(x, (flat if view else None, out, mode, gov, hot, fused))

    def _runner(self, flat: Any, out: Any, in_shape: tuple, post: Any, aug: Any,
                gov: blas.Threads | None) -> Any:
        """forward of one sample with its operands bound (then ``post``, the fused activation
        in place on ``out``, when given); ``aug``: ``flat`` with its 1.0 after it (frozen: one
        product with the kept ``[W | b]`` or ``[W^T; b]``); ``gov``: the thread governor of a
        large product."""
        params, dot, add, threads = self.params, self._dot, self.xp.add, blas.use_for_vector
        if aug is not None:
            kept = self.kept_matrix()
            a, b = (kept, aug) if self.n_out <= self.ROW_MAJOR_MAX_OUT else (aug, kept)

            def run_folded() -> Any:
                threads()
                dot(a, b, out=out)
                self._x, self._in_shape = flat, in_shape
                if post is not None:
                    post()
                return out

            return run_folded
        if gov is not None:
            governed = gov.run

            def product() -> None:
                governed(dot, params["weight"], flat, out)
        else:
            def product() -> None:
                threads()
                dot(params["weight"], flat, out=out)

        def run() -> Any:
            product()
            add(out, params["bias"], out=out)
            self._x, self._in_shape = flat, in_shape
            if post is not None:
                post()
            return out

        return run

    def kept_matrix(self) -> Any:
        """``[W | b]`` (``n_out`` rows, at most ``ROW_MAJOR_MAX_OUT``) or ``[W^T; b]``
        (``n_in + 1`` rows) of the current (then read-only) parameters, kept while frozen."""
        if self._kept is None:
            w, b = self.params["weight"], self.params["bias"]
            if self.n_out <= self.ROW_MAJOR_MAX_OUT:
                kept = np.empty((self.n_out, self.n_in + 1), dtype=w.dtype)
                kept[:, : self.n_in] = w
                kept[:, self.n_in] = b
            else:
                kept = np.empty((self.n_in + 1, self.n_out), dtype=w.dtype)
                kept[: self.n_in] = w.T
                kept[self.n_in] = b
            self._kept = kept
            self.lock_params()
        return self._kept

    def freeze_bytes(self) -> int:
        """Bytes :meth:`freeze` may keep: the bias-folded matrix (:meth:`kept_matrix`) for
        layers small enough to run their one-sample product on one thread (0 for larger ones,
        which never use it)."""
        if self.xp is not np or blas.governed(self.n_in * self.n_out):
            return 0
        return (self.n_in + 1) * self.n_out * self.dtype.itemsize

    def _drop_kept(self) -> None:
        self._kept = None

    def fuse(self, act: Module, general: Any) -> Any:
        """The executor's Linear -> ``act`` (``general`` is that call from ``engine.plan``) as
        one callable, when ``act`` can bind its in-place form to this layer's output
        (``bind_inplace``: ReLU, small (log)softmax); else None."""
        if not hasattr(act, "bind_inplace"):
            return None
        self._act = act
        self._slot.clear()  # rebind: the fused runner is made with the output buffer
        return bound_or(self._slot, general)

    def forward(self, x: Any) -> Any:
        s = self._slot
        if x is s.x and x.shape == s.shape:
            flat, out, mode, gov, hot, _ = s.data
        else:
            flat, out, mode, gov, hot, _ = self._bind(x)
        if hot is not None:  # one small sample: the hot path
            return hot()
        if flat is None:
            flat = self._flat_input(x)
        params = self.params
        if mode == 2:  # mixed dtypes: BLAS cannot write into out directly
            w = params["weight"]
            out[...] = w @ flat if flat.ndim == 1 else flat @ w.T
        else:  # mode 0: one sample, W @ x; mode 1: a batch, X @ W.T; into the reused output
            w = params["weight"] if mode == 0 else params["weight"].T
            a, b = (w, flat) if mode == 0 else (flat, w)
            if gov is None:
                blas.use(1)
                self._dot(a, b, out=out)
            else:
                gov.run(self._dot, a, b, out)
        self._add(out, params["bias"], out=out)
        self._x, self._in_shape = flat, s.shape
        return out

    def backward(self, grad_output: Any) -> Any:
        xp = self.xp
        w, flat = self.params["weight"], self._x
        if flat.ndim == 1:
            self.grads["weight"] += xp.outer(grad_output, flat)
            self.grads["bias"] += grad_output
            if not self.grad_input_needed:
                return None
            grad_input = w.T @ grad_output
        else:
            self.grads["weight"] += grad_output.T @ flat
            self.grads["bias"] += grad_output.sum(axis=0)
            if not self.grad_input_needed:
                return None
            grad_input = grad_output @ w
        return grad_input.reshape(self._in_shape)

    def output_shape(self, in_shape: Any) -> Any:
        n = int(np.prod(in_shape))
        if n != self.n_in:
            raise self.shape_fail(f"expects {self.n_in} input features", tuple(in_shape))
        return (self.n_out,)

    def macs(self, in_shape: Any) -> int:
        return self.n_in * self.n_out

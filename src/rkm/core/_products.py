"""The matrix products of a pass and of the gradient, with an optional faster float32 path.

On CPUs with bfloat16 dot-product instructions (AVX512-BF16: AMD Zen 4 and 5, Intel
Cooper Lake and later), oneDNN can evaluate a float32 product from bfloat16 pieces of
its operands with float32 accumulation. How many pieces it uses is up to oneDNN and the
processor: with enough of them the result is as accurate as a plain float32 product and
about twice as fast; with one piece it is plain bfloat16, which would change the
physics. So the fast path is used only where a probe, run once per process, measures it
to be as accurate as IEEE float32 (mean error within ``ACCURACY_FACTOR`` times that of
the IEEE product, both against float64), and only for products of at least
``FAST_MIN_MACS`` multiply-adds (smaller ones run faster without it). Products in
float64, and on CUDA, are never touched.

The contrastive statistics of a training update, ``h_data^T v_data - h_model^T v_model``,
multiply 0/1 samples: :func:`binary_counts` counts them exactly with one product, on the
CPU, whenever the data batch is 0/1 too. Two products count exactly: int8 into int32, and
float32, whose sums of products of 0, 1 and -1 are integers below 2^24 and so exact in any
order of summation. They give the same counts; which is faster depends on the processor
(int8 about three times faster than float32 on a Zen 5 with VNNI, 25 to 50 times slower on
an AVX2-only EPYC), so :func:`count_product` times both once per process and takes the
faster one.

The setting of a model is ``fast_matmul``: ``None`` (use the fast path where the probe
passed, and the exact int8 counts), ``True`` (require the fast path; a ConfigError where
it is unavailable) or ``False`` (neither: torch's current float32 setting, IEEE by
default). The fast path is a per-call switch of
``torch.backends.mkldnn.matmul.fp32_precision``, restored after each product.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import ConfigError

FAST_MIN_MACS = 1 << 22
"""Products with fewer multiply-adds (m x k x n) than this run on the IEEE path."""

ACCURACY_FACTOR = 3.0
"""The fast path must be at most this many times less accurate than IEEE float32."""


def _mkldnn_matmul() -> Any:
    backends = getattr(torch.backends, "mkldnn", None)
    matmul = getattr(backends, "matmul", None)
    if backends is None or matmul is None or not hasattr(matmul, "fp32_precision") or not backends.is_available():
        return None
    return matmul


@contextlib.contextmanager
def _precision(value: str) -> Iterator[None]:
    setting = _mkldnn_matmul()
    previous = setting.fp32_precision
    setting.fp32_precision = value
    try:
        yield
    finally:
        setting.fp32_precision = previous


def _ieee() -> contextlib.AbstractContextManager:
    """IEEE float32 products for the block, whatever torch's current setting."""
    return _precision("ieee") if _mkldnn_matmul() is not None else contextlib.nullcontext()


def accurate(ieee_error: float, fast_error: float) -> bool:
    """The acceptance rule of the probe: the fast product's mean error is within
    ``ACCURACY_FACTOR`` of IEEE float32's (three bfloat16 pieces pass; two, or one, do not)."""
    return fast_error <= ACCURACY_FACTOR * ieee_error


@functools.lru_cache(maxsize=1)
def probe() -> dict:
    """Measure the fast path against IEEE float32 on this machine (cached for the process).

    Returns ``{'available': bool, 'ieee_error': float, 'fast_error': float, 'reason': str}``,
    errors being the mean of |product - float64 product| / (|A| @ |B|) over a
    128 x 784 x 512 product of gaussian matrices.
    """
    if _mkldnn_matmul() is None:
        return {"available": False, "ieee_error": float("nan"), "fast_error": float("nan"),
                "reason": "this torch build has no oneDNN float32-precision setting (torch >= 2.9 with oneDNN)"}
    g = torch.Generator().manual_seed(0)
    a = torch.randn(128, 784, generator=g)
    b = torch.randn(784, 512, generator=g)
    exact = a.double() @ b.double()
    scale = a.double().abs() @ b.double().abs()
    errors = {}
    for mode in ("ieee", "bf16"):
        with _precision(mode):
            errors[mode] = float(((a @ b).double() - exact).abs().div_(scale).mean())
    ok = accurate(errors["ieee"], errors["bf16"])
    reason = "as accurate as IEEE float32" if ok else "less accurate than IEEE float32 on this processor"
    return {"available": ok, "ieee_error": errors["ieee"], "fast_error": errors["bf16"], "reason": reason}


def resolve(setting: object, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a model with ``fast_matmul=setting`` on ``device`` / ``dtype`` uses the fast path."""
    if setting is not None and not isinstance(setting, bool):
        raise ConfigError(f"fast_matmul must be None (automatic), True or False, got {setting!r}.")
    if setting is False:
        return False
    usable = device.type == "cpu" and dtype == torch.float32
    if usable:
        result = probe()
        usable, why = result["available"], result["reason"]
    else:
        why = f"it applies to float32 on the CPU only, this model is {dtype} on {device}"
    if setting is True and not usable:
        raise ConfigError(f"fast_matmul=True but the fast float32 product is not available: {why}. "
                          "Use fast_matmul=None (automatic) or False.")
    return usable


def _context(fast: bool, a: torch.Tensor, b: torch.Tensor) -> contextlib.AbstractContextManager:
    if fast and a.shape[0] * a.shape[1] * b.shape[1] >= FAST_MIN_MACS:
        return _precision("bf16")
    return contextlib.nullcontext()


def addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, fast: bool) -> torch.Tensor:
    """``bias + a @ b``, on the fast path if ``fast`` and the product is large enough."""
    with _context(fast, a, b):
        return torch.addmm(bias, a, b)


def mm(a: torch.Tensor, b: torch.Tensor, fast: bool) -> torch.Tensor:
    """``a @ b``, on the fast path if ``fast`` and the product is large enough."""
    with _context(fast, a, b):
        return torch.mm(a, b)


def addmm_(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, alpha: float, fast: bool) -> torch.Tensor:
    """``out += alpha * a @ b`` in place, on the fast path if ``fast`` and the product is large enough."""
    with _context(fast, a, b):
        return out.addmm_(a, b, alpha=alpha)


@functools.lru_cache(maxsize=1)
def _int8_products() -> bool:
    """Whether this torch multiplies int8 matrices into exact int32 on the CPU."""
    if not hasattr(torch, "_int_mm"):
        return False
    a = torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=torch.int8)
    b = torch.tensor([[1, -1], [1, 0], [1, 1]], dtype=torch.int8)
    try:
        return bool(torch.equal(torch._int_mm(a, b), a.int() @ b.int()))
    except RuntimeError:
        return False


COUNT_PROBE_SHAPE = (128, 256, 784)
"""(rows, hidden, visible) of the product :func:`count_product` times: two batches of 64, a mid-size layer."""


def _seconds(product: Any) -> float:
    product()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - start)
    return best


@functools.lru_cache(maxsize=1)
def count_product() -> str:
    """``'int8'`` or ``'float32'``: the exact product :func:`binary_counts` uses on this machine.

    int8 where this torch multiplies int8 matrices exactly and a product of
    :data:`COUNT_PROBE_SHAPE` runs faster in int8 than in float32 (timed once per process,
    best of three); float32 otherwise. Both give the same counts, so the choice changes the
    time of an update, never its result.
    """
    if not _int8_products():
        return "float32"
    rows, hidden, visible = COUNT_PROBE_SHAPE
    g = torch.Generator().manual_seed(0)
    h = torch.randint(0, 2, (rows, hidden), generator=g, dtype=torch.int8)
    v = torch.randint(0, 2, (rows, visible), generator=g, dtype=torch.int8)
    hf, vf = h.float(), v.float()
    int8 = _seconds(lambda: torch._int_mm(h.t(), v))
    with _ieee():
        float32 = _seconds(lambda: torch.mm(hf.t(), vf))
    return "int8" if int8 < float32 else "float32"


def is_binary(x: torch.Tensor) -> bool:
    """Whether every entry of ``x`` is 0 or 1."""
    return not bool(torch.count_nonzero(x * (x - 1)))


def binary_counts(h_pos: torch.Tensor, v_pos: torch.Tensor, h_neg: torch.Tensor,
                  v_neg: torch.Tensor) -> torch.Tensor | None:
    """``h_pos^T v_pos - h_neg^T v_neg`` as exact integer counts from one product, or None.

    All four must be 0/1 (the caller's guarantee; :func:`is_binary` checks data). The product
    is :func:`count_product`'s: int32 counts from int8, or float32 holding the same integers.
    None when the two batches differ in size, off the CPU, below ``FAST_MIN_MACS`` or past
    2^23 rows per batch (float32's exact integers): the caller then uses float products.
    """
    n = h_pos.shape[0]
    if (h_pos.device.type != "cpu" or h_neg.shape[0] != n or n >= 2**23
            or 2 * n * h_pos.shape[1] * v_pos.shape[1] < FAST_MIN_MACS):
        return None
    dtype = torch.int8 if count_product() == "int8" else torch.float32
    h = torch.cat([h_pos, h_neg]).to(dtype)
    v = torch.cat([v_pos, v_neg]).to(dtype)
    v[n:].neg_()
    if dtype == torch.int8:
        return torch._int_mm(h.t(), v)
    with _ieee():
        return torch.mm(h.t(), v)

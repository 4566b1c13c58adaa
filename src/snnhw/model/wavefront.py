"""The fast wavefront of one spiking LSTM layer: one autograd node with a hand-written backward.

:class:`~snnhw.model.spiking_lstm.SpikingLSTMLayer` runs its (n, t) grid through
:class:`WavefrontFunction`. It computes the same cells with the same formulas as the per-step
autograd composition that :meth:`SpikingLSTM.forward_legacy
<snnhw.model.spiking_lstm.SpikingLSTM.forward_legacy>` keeps as the reference, with far less
overhead per diagonal:

* **Layout.** Diagonal ``k = n + t`` (``D = N + T − 1`` of them) holds its cells in slots
  ``j = T − 1 − t``; row ``j·B + b`` of a diagonal is sample b in slot j. Every per-cell
  quantity the backward pass needs is written in place (``out=``) into a ``[D, T·B, W]``
  history, one operator per quantity and diagonal. With this slot order h and c stay in their
  slot from one diagonal to the next (``h(n−1, t)`` is in the previous diagonal's slot j), a
  membrane moves one slot on (``U(n, t−1)`` is in slot ``j + 1``; the membrane histories have
  a zero slot T for ``t = 0``), the direct input of the valid slots is one contiguous block of
  ``Wx·x + b`` (the element grows with j), and the ramps compute only their valid slots (a
  contiguous slot range per diagonal).
* **Gate order.** The caller permutes the gate rows so that the binary LIF gates come first
  (``f, i, o | g`` when i spikes, ``f, o | i | g`` when g spikes): the binary neurons of a
  diagonal are one operator over ``[T·B, 3H]`` (or ``2H``) with per-column θ and λ.
* **Backward.** One reverse loop over the diagonals, with the recurrent gradients (h through
  ``Wh``, c through ``c_in``, the membranes) in small ring buffers; the θ and λ gradients are
  accumulated (elementwise for the binary gates, per-diagonal dot products for the ternary
  neurons) and summed once at the end; the ``Wh``, ``Wx`` and bias gradients are one GEMM or
  sum each over the whole history.
* **Memory.** No per-step autograd graph, no bool tensors (comparisons write 0/1 straight into
  float outputs), no NaN fill of fresh buffers under deterministic mode. The history buffers
  come from :data:`WORKSPACE` and go back there after the backward pass: glibc hands tensors
  above 32 MB fresh pages each time, and first-touching them costs about as much as the
  arithmetic of the forward pass.

* **Compiled neuron kernels.** Where :mod:`snnhw.model.fused_cells` has them (a C compiler on
  the machine; CPU tensors, float32 or float64; not for a recording run), the neurons of a
  diagonal are one compiled call forward and one backward instead of ~30 and ~70 operators, and
  only the membranes, the clip gate's z/θ, the cell state and the sign of g's input are kept
  (:data:`FUSED_KEYS`; spikes and post-reset membranes are recomputed): the same values, a third
  of the history traffic. Otherwise the PyTorch operators below run.
* **Sparse recurrent products.** With the same library (CPU, float32 or float64, except with
  bfloat16 products), ``zx + h·Whᵀ``, ``ext + ∂z·Wh`` and the ``Wh`` gradient skip the zeros
  of h (about a fifth of it is nonzero in trained models) and of ∂z (15–30 %) instead of
  running dense GEMMs (``sparse_products.c``: the same terms, summed in a fixed order that does
  not depend on the instruction set); recording runs use them too, so a trace and a plain pass
  agree.
* **bfloat16 recurrent products** (:func:`recurrent_bf16`, ``snnhw train --bf16``): optional,
  for training passes only.

The values are those of :mod:`snnhw.model.neurons` in the same operation order (spikes
``[U > θ]``, soft reset, shift ``y ± θ/(2T)``, clip ``clamp(z/θ)``, ``c = i·g + s_f·c_in``);
only the summation order of the products differs (GEMM row blocking, or the sparse products'
order), so values agree to the last bit or so and spikes exactly unless a membrane lies within
that rounding of a threshold.
Gradients are those of :class:`~snnhw.model.neurons.SpikeFunction`'s surrogate and plain
calculus, summed in another order (``tests/model/test_spiking_speed_equivalence.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
import torch.utils.deterministic
from torch import Tensor

from snnhw.model import fused_cells

HISTORY_KEYS: tuple[str, ...] = ("f", "i", "g", "o", "c", "h", "cell")
"""Trace keys of a recording run, in the order :class:`WavefrontFunction` returns them."""


class WavefrontSpec(NamedTuple):
    """Static description of one layer run (passed through ``apply`` as a plain argument).

    ``N`` elements, ``T`` steps; ``spiking_i`` (non-spiking g) or not (non-spiking i);
    ``shift`` (the θ/(2T) shifts); ``gamma`` (surrogate peak); ``direct``: the input ``u`` is
    ``[N, B, D_in]`` (the same at every t) instead of the diagonal layout ``[D, T, B, D_in]``;
    ``record``: also return the trace; ``train``: a backward pass may follow (keep the
    histories; the caller decides, since ``ctx.needs_input_grad`` ignores ``torch.no_grad``);
    ``bf16`` (with ``train`` only): the three recurrent GEMMs (``h·Whᵀ``, ``∂z·Wh`` and the
    ``Wh`` gradient) in bfloat16, see :func:`recurrent_bf16`.
    """

    N: int
    T: int
    spiking_i: bool
    shift: bool
    gamma: float
    direct: bool
    record: bool = False
    train: bool = True
    bf16: bool = False


_BF16 = torch.bfloat16
_recurrent_bf16 = False


@contextmanager
def recurrent_bf16(enabled: bool = True) -> Iterator[None]:
    """Within this context, training passes of the fast path run their recurrent GEMMs in bfloat16.

    The forward product ``h·Whᵀ`` (h is 0/±1, exact in bfloat16; ``Wh`` rounded to bfloat16,
    8 significant bits), its backward ``∂z·Wh`` (``∂z`` rounded) and the ``Wh`` gradient
    ``Σ ∂zᵀ·h`` take bfloat16 operands and give bfloat16 results (PyTorch's CPU GEMMs have no
    float32 output for them), added to the float32 ``Wx·x + b`` and external gradients. About twice
    as fast as float32 on an AVX512-BF16 CPU (``docs/training.md``); the values then differ
    from the float32 path by bfloat16 rounding, so some spikes flip. Passes without gradients
    (validation, evaluation, tracing) stay float32. Not thread-safe (a module-level switch).
    """
    global _recurrent_bf16
    was = _recurrent_bf16
    _recurrent_bf16 = enabled
    try:
        yield
    finally:
        _recurrent_bf16 = was


def recurrent_bf16_enabled() -> bool:
    """Whether :func:`recurrent_bf16` is on."""
    return _recurrent_bf16


def slot_range(k: int, N: int, T: int) -> tuple[int, int]:
    """Valid slots ``[lo, hi)`` of diagonal k (slot j holds element ``k − T + 1 + j`` at ``t = T − 1 − j``)."""
    return max(0, T - 1 - k), min(T, N + T - 1 - k)


def grid_view(hist: Tensor, N: int, T: int) -> Tensor:
    """The ``[N, T, B, W]`` (element, time step) view of a contiguous ``[D, T, B, W]`` history."""
    _, _, B, W = hist.shape
    s_k, s_j = T * B * W, B * W
    return hist.as_strided((N, T, B, W), (s_k, s_k - s_j, W, 1), hist.storage_offset() + (T - 1) * s_j)


def to_diagonal(u: Tensor, T: int) -> Tensor:
    """Per-(n, t) input ``[N, T, B, W]`` → the diagonal layout ``[D, T, B, W]`` (0 where no cell)."""
    N = u.shape[0]
    D = N + T - 1
    k = torch.arange(D, device=u.device).unsqueeze(1)
    t = (T - 1 - torch.arange(T, device=u.device)).unsqueeze(0)
    n = k - t
    valid = ((n >= 0) & (n < N)).to(u.dtype).view(D, T, 1, 1)
    return u[n.clamp(0, N - 1), t.expand(D, T)] * valid


class Workspace:
    """Reusable history buffers.

    A training step at the HAR size writes about 450 MB of histories (T = 4, batch 64), and
    touching fresh pages costs about as much as the forward arithmetic. :class:`WavefrontFunction`
    takes its buffers here in the forward pass and gives them back at the end of the backward
    pass, so the next step reuses them; buffers of a forward pass whose backward pass never
    runs are simply freed. At most ``per_key`` buffers per (shape, dtype, device) are kept
    (they stay allocated between steps); :meth:`clear` drops them.
    """

    def __init__(self, per_key: int = 32) -> None:
        self.per_key = per_key
        self._free: dict[tuple[tuple[int, ...], torch.dtype, torch.device], list[Tensor]] = {}

    def take(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
        """An uninitialised tensor of that shape (a kept one if there is one)."""
        free = self._free.get((tuple(shape), dtype, device))
        if free:
            return free.pop()
        return torch.empty(shape, dtype=dtype, device=device)

    def give(self, tensors: Sequence[Tensor | None]) -> None:
        """Keep these tensors for later :meth:`take` calls (the caller must not use them any more)."""
        for tensor in tensors:
            if tensor is None:
                continue
            free = self._free.setdefault((tuple(tensor.shape), tensor.dtype, tensor.device), [])
            if len(free) < self.per_key:
                free.append(tensor)

    def clear(self) -> None:
        """Free every kept buffer."""
        self._free.clear()

    def nbytes(self) -> int:
        """Bytes currently kept."""
        return sum(t.numel() * t.element_size() for free in self._free.values() for t in free)


WORKSPACE = Workspace()
"""The process-wide :class:`Workspace` of the fast path (``WORKSPACE.clear()`` frees it)."""


@contextmanager
def _no_nan_fill() -> Iterator[None]:
    """Skip the NaN fill of ``torch.empty`` under deterministic mode (the trainer's setting):
    every element of a buffer that is read is written (or zeroed) first."""
    was = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = was


def _zero_invalid(hist: Tensor, N: int, T: int, B: int) -> None:
    """Zero the rows of ``hist`` [D, T·B, …] that hold no cell (the ramps)."""
    for k in range(hist.shape[0]):
        lo, hi = slot_range(k, N, T)
        if lo > 0:
            hist[k, :lo * B].zero_()
        if hi < T:
            hist[k, hi * B:T * B].zero_()


class _Params(NamedTuple):
    th_b: Tensor  # [nb·H] thresholds of the binary gates, per column
    lam_b: Tensor  # [nb·H] their leaks
    th_v: Tensor  # 0-dim: threshold of the non-spiking (clip) gate
    th_g: Tensor | None  # spiking g: θ+, θ−, λ
    th_gn: Tensor | None
    lam_g: Tensor | None
    th_c: Tensor
    th_cn: Tensor
    lam_c: Tensor


def param_order(spiking_i: bool) -> tuple[tuple[str, str], ...]:
    """(``"theta"`` or ``"leak"``, key) of the 0-dim parameters :class:`WavefrontFunction` takes."""
    if spiking_i:
        return (("theta", "f"), ("theta", "i"), ("theta", "o"), ("leak", "f"), ("leak", "i"), ("leak", "o"),
                ("theta", "g"), ("theta", "c"), ("theta", "c_neg"), ("leak", "c"))
    return (("theta", "f"), ("theta", "o"), ("leak", "f"), ("leak", "o"), ("theta", "i"),
            ("theta", "g"), ("theta", "g_neg"), ("leak", "g"), ("theta", "c"), ("theta", "c_neg"), ("leak", "c"))


def _binary_gates(spiking_i: bool) -> int:
    """How many gates are binary LIF neurons: f, i, o when i spikes (g is the clip gate), else f, o."""
    return 3 if spiking_i else 2


def _unpack(spiking_i: bool, params: Sequence[Tensor], H: int) -> _Params:
    nb = _binary_gates(spiking_i)
    th_b = torch.cat([p.reshape(1).expand(H) for p in params[:nb]])
    lam_b = torch.cat([p.reshape(1).expand(H) for p in params[nb:2 * nb]])
    rest = list(params[2 * nb:])
    th_v = rest.pop(0)
    th_g = th_gn = lam_g = None
    if not spiking_i:
        th_g, th_gn, lam_g = rest[:3]
        rest = rest[3:]
    th_c, th_cn, lam_c = rest
    return _Params(th_b, lam_b, th_v, th_g, th_gn, lam_g, th_c, th_cn, lam_c)


TERNARY_KEYS: tuple[str, ...] = ("u", "up", "sp", "sn", "pos", "neg")
"""Histories of a ternary neuron: membrane before and after the reset, [u > θ+], [u < −θ−],
and the signs of the shifted input (only with the shift)."""


class _Tern(NamedTuple):
    """One diagonal's views of a ternary neuron (forward: outputs; backward: inputs)."""

    u: Tensor
    sp: Tensor
    sn: Tensor
    pos: Tensor | None
    neg: Tensor | None
    up: Tensor  # the post-reset membrane of these cells (forward output; unused backward)
    up_prev: Tensor  # U'(n, t−1): slot j + 1 of the previous diagonal (0 for t = 0)


class _TernConst(NamedTuple):
    th: Tensor
    th_n: Tensor
    neg_th_n: Tensor
    lam: Tensor
    sig: Tensor | None  # the shifts θ/(2T), θ−/(2T)
    sig_n: Tensor | None
    peak: Tensor  # surrogate: γ/θ, γ/θ², γ/θ−, γ/θ−²
    slope: Tensor
    peak_n: Tensor
    slope_n: Tensor


def _tern_const(th: Tensor, th_n: Tensor, lam: Tensor, shift: bool, T: int, gamma: float) -> _TernConst:
    peak, peak_n = gamma / th, gamma / th_n
    return _TernConst(th, th_n, -th_n, lam, th / (2 * T) if shift else None, th_n / (2 * T) if shift else None,
                      peak, peak / th, peak_n, peak_n / th_n)


def _ternary_forward(y_in: Tensor, n: _Tern, k: _TernConst, y_buf: Tensor) -> None:
    """One ternary LIF step: shift, ``U = λ·U + y``, compare, soft reset (operation order of
    :func:`~snnhw.model.neurons.ternary_shift` / :func:`~snnhw.model.neurons.ternary_lif`)."""
    if k.sig is not None and n.pos is not None and n.neg is not None:
        torch.gt(y_in, 0.0, out=n.pos)
        torch.lt(y_in, 0.0, out=n.neg)
        y = torch.addcmul(y_in, n.pos, k.sig, out=y_buf)
        y.addcmul_(n.neg, k.sig_n, value=-1.0)
    else:
        y = y_in
    torch.addcmul(y, n.up_prev, k.lam, out=n.u)
    torch.gt(n.u, k.th, out=n.sp)
    torch.lt(n.u, k.neg_th_n, out=n.sn)
    torch.addcmul(n.u, n.sp, k.th, value=-1.0, out=n.up)
    n.up.addcmul_(n.sn, k.th_n)


def _cut(x: Tensor, rows: slice, full: bool) -> Tensor:
    """The rows of a diagonal's valid slots in a ``[T·B, W]`` buffer (all of it when full)."""
    return x if full else x[rows]


def _tern_views(tk: dict[str, list[Tensor]], k: int, rows: slice, full: bool, up: Tensor, up_prev: Tensor) -> _Tern:
    """Diagonal k's views of a ternary neuron's histories (``up``, ``up_prev`` given)."""
    return _Tern(_cut(tk["u"][k], rows, full), _cut(tk["sp"][k], rows, full), _cut(tk["sn"][k], rows, full),
                 _cut(tk["pos"][k], rows, full) if "pos" in tk else None,
                 _cut(tk["neg"][k], rows, full) if "neg" in tk else None, up, up_prev)


def _forward_cell(spiking_i: bool, H: int, v_lo: float, z: Tensor, ubp_prev: Tensor, c_in: Tensor,
                  cb: tuple[Tensor, Tensor, Tensor], kc: _TernConst, kg: _TernConst | None,
                  out: tuple[Tensor, ...], tc: _Tern, tg: _Tern | None, scratch: tuple[Tensor, Tensor]) -> None:
    """The neurons of one diagonal after the GEMM ``z = zx + h_in·Whᵀ`` (rows = its cells).

    ``cb`` = (θ, λ of the binary gates per column, θ of the clip gate); ``out`` = (ub, sb, ubp,
    q, v, c, sc, sg, h): binary membranes before/after the reset and spikes, the clip gate
    before/after the clamp, the cell state, s_c, s_g (spiking g only) and h.
    """
    th_b, lam_b, th_v = cb
    ub, sb, ubp, q, v, c, sc, sg, h = out
    tmp, y_buf = scratch
    bH = ub.shape[1]
    # binary LIF gates, all at once: U = λ·U + z; s = [U > θ]; U − θ·s
    torch.addcmul(z[:, :bH], ubp_prev, lam_b, out=ub)
    torch.gt(ub, th_b, out=sb)
    torch.addcmul(ub, sb, th_b, value=-1.0, out=ubp)
    # the non-spiking gate: clamp(z/θ, lo, 1)
    torch.div(z[:, bH:bH + H], th_v, out=q)
    torch.clamp(q, v_lo, 1.0, out=v)
    if spiking_i:
        ig = torch.mul(sb[:, H:2 * H], v, out=tmp)  # s_i·g
        s_o = sb[:, 2 * H:]
    else:
        assert tg is not None and kg is not None
        _ternary_forward(z[:, 3 * H:], tg, kg, y_buf)
        torch.sub(tg.sp, tg.sn, out=sg)
        ig = torch.mul(v, sg, out=tmp)  # i·s_g
        s_o = sb[:, H:]
    torch.addcmul(ig, sb[:, :H], c_in, out=c)
    _ternary_forward(c, tc, kc, y_buf)
    torch.sub(tc.sp, tc.sn, out=sc)
    torch.mul(s_o, sc, out=h)


def _zx_block(spec: WavefrontSpec, zx: Tensor, k: int, lo: int, hi: int, B: int, rows: slice, full: bool) -> Tensor:
    """``Wx·u + b`` of diagonal k's valid slots (rows ``lo·B … hi·B`` of the diagonal)."""
    if spec.direct:
        e0 = k - spec.T + 1 + lo
        return zx[e0 * B:(e0 + hi - lo) * B]
    return _cut(zx.view(-1, spec.T * B, zx.shape[-1])[k], rows, full)


def _gate_input(z: Tensor, zx_blk: Tensor, h_prev: Tensor | None, wh_t: Tensor, hb_prev: Tensor | None,
                whb_t: Tensor | None, r_buf: Tensor | None, addmm: Any = None) -> None:
    """``z = zx + h_prev·Whᵀ`` into ``z`` (``zx`` alone for the first diagonal, ``h_prev`` None);
    in bfloat16 (``hb_prev``, ``whb_t``, result in ``r_buf``) when those are given, else with the
    compiled sparse product ``addmm`` (``wh_t`` contiguous) when given, else one GEMM."""
    if h_prev is None:
        z.copy_(zx_blk)
    elif hb_prev is not None and whb_t is not None and r_buf is not None:
        torch.mm(hb_prev, whb_t, out=r_buf)
        z.copy_(r_buf)
        z.add_(zx_blk)
    elif addmm is not None:
        _sparse_addmm(addmm, z, zx_blk, h_prev, wh_t)
    else:
        torch.addmm(zx_blk, h_prev, wh_t, out=z)


def _products(dtype: torch.dtype, device: torch.device, bf16: bool) -> tuple[Any, Any]:
    """The compiled sparse products (``sp_addmm``, ``sp_tmm``: ``fused_cells.sparse_products``) for
    a pass in ``dtype`` on ``device``, or ``(None, None)`` where the GEMMs run (no compiler,
    switched off, bfloat16 products)."""
    products = None if bf16 else fused_cells.sparse_products(dtype, device)
    return products if products is not None else (None, None)


def _sparse_addmm(fn: Any, out: Tensor, base: Tensor | None, a: Tensor, b: Tensor) -> None:
    """``out = base + a·b`` (``base`` None: 0) with the compiled kernel, skipping the zeros of a
    ([rows, K]; b [K, W]; all contiguous)."""
    assert out.is_contiguous() and a.is_contiguous() and b.is_contiguous()
    assert base is None or base.is_contiguous()
    if fn(fused_cells.kernel_threads(), out.shape[0], a.shape[1], out.shape[1], a.data_ptr(), b.data_ptr(),
          None if base is None else base.data_ptr(), out.data_ptr()):
        raise MemoryError("the sparse-product kernel could not allocate its index lists")


def _sparse_tmm(fn: Any, a: Tensor, g: Tensor) -> Tensor:
    """``aᵀ·g`` ([K, W]) with the compiled kernel, skipping the zeros of a ([rows, K]; g
    [rows, W]; contiguous)."""
    assert a.is_contiguous() and g.is_contiguous()
    out = torch.empty(a.shape[1], g.shape[1], dtype=g.dtype, device=g.device)
    if fn(fused_cells.kernel_threads(), a.shape[0], a.shape[1], g.shape[1], a.data_ptr(), g.data_ptr(),
          out.data_ptr()):
        raise MemoryError("the sparse-product kernel could not allocate its index lists")
    return out


def _hidden_grad(gh: Tensor, ext: Tensor | None, gz_next: Tensor | None, wh: Tensor, gzb_next: Tensor | None,
                 whb: Tensor | None, r_buf: Tensor | None, addmm: Any = None) -> None:
    """``∂L/∂h = ext + ∂z(next)·Wh`` into ``gh`` (either term may be absent; the product in
    bfloat16 when ``gzb_next`` and ``whb`` are given, via ``r_buf``, else with the compiled sparse
    product ``addmm`` (``wh`` contiguous) when given, else one GEMM)."""
    if gz_next is None:
        if ext is not None:
            gh.copy_(ext)
        return
    if gzb_next is not None and whb is not None and r_buf is not None:
        torch.mm(gzb_next, whb, out=r_buf)
        gh.copy_(r_buf)
        if ext is not None:
            gh.add_(ext)
    elif addmm is not None:
        _sparse_addmm(addmm, gh, ext, gz_next, wh)
    elif ext is not None:
        torch.addmm(ext, gz_next, wh, out=gh)
    else:
        torch.mm(gz_next, wh, out=gh)


def wavefront_forward(spec: WavefrontSpec, u: Tensor, wx: Tensor, b: Tensor, wh: Tensor,
                      params: Sequence[Tensor], keep: bool) -> dict[str, Any]:
    """Run one layer.

    Args:
        spec: see :class:`WavefrontSpec`.
        u: the layer input, ``[N, B, D_in]`` (direct) or ``[D, T, B, D_in]``.
        wx, b, wh: the gate-permuted ``weight_x`` [4H, D_in], ``bias`` [4H], ``weight_h`` [4H, H].
        params: the 0-dim θ and λ in the order of :func:`param_order`.
        keep: keep every history (for the backward pass or the trace); else ring buffers.

    Returns:
        dict with ``hd`` (``[D, T, B, H]``: h in the diagonal layout, 0 where there is no cell)
        and, when ``keep``, the histories (``[D, T·B, W]``; the post-reset membranes ``ubp``,
        ``c_up``, ``g_up``: ``[D, (T+1)·B, W]``), or, from the compiled kernels (used when
        available, except for a recording run), ``fused`` and the histories of :func:`_fused_forward`.
    """
    fused = None if spec.record else fused_cells.kernels(u.dtype, u.device)
    if fused is not None:
        return _fused_forward(spec, u, wx, b, wh, params, keep, fused[0])
    N, T, D, H, B, TB, nb, bH = _dims(spec, wh, u.shape[-2])
    H4 = 4 * H
    spiking_i = spec.spiking_i
    p = _unpack(spiking_i, params, H)
    dtype, device = u.dtype, u.device
    v_lo = -1.0 if spiking_i else 0.0  # the non-spiking gate: g ∈ [−1, 1], i ∈ [0, 1]
    out: dict[str, Any] = {}
    tern_keys = [key for key in TERNARY_KEYS if spec.shift or key not in ("pos", "neg")]

    with _no_nan_fill():
        def hist(key: str, width: int, extra: int = 0, ring: int = 1) -> list[Tensor]:
            """Per-diagonal [(T+extra)·B, width] buffers: a kept history, or `ring` reused ones."""
            if keep:
                full = WORKSPACE.take((D, (T + extra) * B, width), dtype, device)
                out[key] = full
                return list(full.unbind(0))
            bufs = [torch.empty((T + extra) * B, width, dtype=dtype, device=device) for _ in range(ring)]
            return [bufs[k % ring] for k in range(D)]

        hd = torch.empty(D, T, B, H, dtype=dtype, device=device)
        out["hd"] = hd
        _zero_invalid(hd.view(D, TB, H), N, T, B)
        hd_k = list(hd.view(D, TB, H).unbind(0))
        zx = WORKSPACE.take((u.numel() // u.shape[-1], H4), dtype, device)
        torch.addmm(b, u.reshape(-1, u.shape[-1]), wx.t(), out=zx)
        out["zx"] = zx  # given back by the caller
        ub_k, sb_k, ubp_k = hist("ub", bH), hist("sb", bH), hist("ubp", bH, extra=1, ring=2)
        q_k, v_k, c_k, sc_k = hist("q", H), hist("v", H), hist("c", H, ring=2), hist("sc", H)
        sg_k = hist("sg", H) if not spiking_i else []

        def ternary_hist(prefix: str) -> dict[str, list[Tensor]]:
            return {key: hist(prefix + key, H, extra=int(key == "up"), ring=1 + int(key == "up")) for key in tern_keys}

        tc_k = ternary_hist("c_")
        tg_k = ternary_hist("g_") if not spiking_i else {}
        # slot T of a post-reset membrane is U(n, −1) = 0; c_in of a new element is 0
        if keep:
            for key in ("ubp", "c_up", "g_up"):
                if key in out:
                    out[key].view(D, T + 1, B, -1)[:, T].zero_()
            _zero_invalid(out["c"], N, T, B)
        else:
            for lst in (ubp_k, tc_k["up"], *([tg_k["up"]] if tg_k else [])):
                for buf in lst[:2]:
                    buf[TB:].zero_()
            for buf in c_k[:2]:
                buf.zero_()
        z_scr = torch.empty(TB, H4, dtype=dtype, device=device)
        scratch = (torch.empty(TB, H, dtype=dtype, device=device), torch.empty(TB, H, dtype=dtype, device=device))
        zeros = torch.zeros((T + 1) * B, bH, dtype=dtype, device=device)
        # bfloat16 recurrent GEMMs: h also kept in bfloat16 (0 where there is no cell)
        bf16 = spec.bf16 and keep
        hb_k: list[Tensor] = []
        r_scr: Tensor | None = None
        if bf16:
            hb = WORKSPACE.take((D, TB, H), _BF16, device)
            _zero_invalid(hb, N, T, B)
            out["hb"] = hb
            hb_k = list(hb.unbind(0))
            r_scr = torch.empty(TB, H4, dtype=_BF16, device=device)

    cb = (p.th_b, p.lam_b, p.th_v)
    kc = _tern_const(p.th_c, p.th_cn, p.lam_c, spec.shift, T, spec.gamma)
    kg = _tern_const(p.th_g, p.th_gn, p.lam_g, spec.shift, T, spec.gamma) if not spiking_i else None  # type: ignore[arg-type]
    addmm, _ = _products(dtype, device, bf16)
    wh_t = wh.t().contiguous() if addmm is not None else wh.t()
    whb_t = wh_t.to(_BF16) if bf16 else None

    for k in range(D):
        lo, hi = slot_range(k, N, T)
        r0, r1 = lo * B, hi * B
        full = r1 - r0 == TB
        rows, prev_rows = slice(r0, r1), slice(r0 + B, r1 + B)  # this diagonal's slots; slots j + 1
        z = _cut(z_scr, rows, full)
        zx_blk = _zx_block(spec, zx, k, lo, hi, B, rows, full)
        _gate_input(z, zx_blk, _cut(hd_k[k - 1], rows, full) if k else None, wh_t,
                    _cut(hb_k[k - 1], rows, full) if k and hb_k else None, whb_t,
                    _cut(r_scr, rows, full) if r_scr is not None else None, addmm)
        if k == 0:
            c_in = zeros[rows, :H]
            ubp_prev, ucp_prev, ugp_prev = zeros[prev_rows], zeros[prev_rows, :H], zeros[prev_rows, :H]
        else:
            c_in = _cut(c_k[k - 1], rows, full)
            ubp_prev = ubp_k[k - 1][prev_rows]
            ucp_prev = tc_k["up"][k - 1][prev_rows]
            ugp_prev = tg_k["up"][k - 1][prev_rows] if tg_k else zeros[prev_rows, :H]
        outs = tuple(_cut(lst[k], rows, full) for lst in (ub_k, sb_k)) + (ubp_k[k][rows],) + tuple(
            _cut(lst[k], rows, full) for lst in (q_k, v_k, c_k, sc_k, sg_k or hd_k, hd_k))
        tc = _tern_views(tc_k, k, rows, full, tc_k["up"][k][rows], ucp_prev)
        tg = _tern_views(tg_k, k, rows, full, tg_k["up"][k][rows], ugp_prev) if tg_k else None
        scr = scratch if full else (scratch[0][rows], scratch[1][rows])
        _forward_cell(spiking_i, H, v_lo, z, ubp_prev, c_in, cb, kc, kg, outs, tc, tg, scr)
        if hb_k:
            _cut(hb_k[k], rows, full).copy_(outs[-1])
    return out


def trace_of(spec: WavefrontSpec, hist: dict[str, Any], H: int) -> dict[str, Tensor]:
    """The ``[N, T, B, H]`` trace tensors (keys :data:`HISTORY_KEYS`) of a kept forward pass."""
    N, T = spec.N, spec.T
    D, _, B, _ = hist["hd"].shape

    def grid(key: str) -> Tensor:
        x = hist[key]
        return grid_view(x.view(D, T, B, x.shape[-1]), N, T)

    sb, v = grid("sb"), grid("v")
    trace = {"f": sb[..., :H]}
    if spec.spiking_i:
        trace["i"], trace["g"], trace["o"] = sb[..., H:2 * H], v, sb[..., 2 * H:]
    else:
        trace["i"], trace["g"], trace["o"] = v, grid("sg"), sb[..., H:]
    trace["c"], trace["h"], trace["cell"] = grid("sc"), grid_view(hist["hd"], N, T), grid("c")
    return {key: val.clone() for key, val in trace.items()}


def _tri(u: Tensor, th: Tensor, peak: Tensor, slope: Tensor, out: Tensor) -> Tensor:
    """The triangular surrogate ``max(0, γ/θ − |u − θ|·γ/θ²)`` (``peak`` = γ/θ, ``slope`` = γ/θ²)
    into ``out`` (the operations of :class:`~snnhw.model.neurons.SpikeFunction`)."""
    d = torch.sub(u, th, out=out)
    d.abs_()
    torch.addcmul(peak, d, slope, value=-1.0, out=d)
    return d.clamp_(min=0.0)


TERNARY_SUMS: tuple[str, ...] = ("s_p", "s_n", "wp_u", "wn_u", "lam", "pos", "neg")
"""Per-diagonal sums behind a ternary neuron's parameter gradients: Σ ∂L/∂U'·s+ and Σ ∂L/∂U'·s−
(θ± through the reset), Σ (∂L/∂s+·tri+)·U and Σ (−∂L/∂s−·tri−)·U (θ± through the spike),
Σ ∂L/∂U·U(t−1) (λ), Σ ∂L/∂y·[y > 0] and Σ ∂L/∂y·[y < 0] (the shifts)."""


def _ternary_backward(gs: Tensor, gup: Tensor, n: _Tern, k: _TernConst, acc: Tensor | None,
                      scratch: Sequence[Tensor]) -> Tensor:
    """∂L/∂y (into ``scratch[4]``) of one ternary step from ∂L/∂s (gs) and ∂L/∂U' (gup); the
    :data:`TERNARY_SUMS` of these cells go into ``acc`` (a row of 7)."""
    dp = _tri(n.u, k.th, k.peak, k.slope, out=scratch[0])
    dn = _tri(n.u, k.neg_th_n, k.peak_n, k.slope_n, out=scratch[1])  # tri(−U; θ−) = … |U + θ−| …
    wp = torch.addcmul(gs, gup, k.th, value=-1.0, out=scratch[2])  # ∂L/∂s+ (output and reset)
    wn = torch.addcmul(gs, gup, k.th_n, value=-1.0, out=scratch[3])  # −∂L/∂s−
    wp.mul_(dp)
    wn.mul_(dn)
    gu = torch.add(gup, wp, out=scratch[4])
    gu.add_(wn)
    if acc is not None:
        gup1, gu1, u1 = gup.view(-1), gu.view(-1), n.u.view(-1)
        torch.dot(gup1, n.sp.view(-1), out=acc[0])
        torch.dot(gup1, n.sn.view(-1), out=acc[1])
        torch.dot(wp.view(-1), u1, out=acc[2])
        torch.dot(wn.view(-1), u1, out=acc[3])
        torch.dot(gu1, n.up_prev.reshape(-1), out=acc[4])
        if n.pos is not None and n.neg is not None:
            torch.dot(gu1, n.pos.view(-1), out=acc[5])
            torch.dot(gu1, n.neg.view(-1), out=acc[6])
    return gu


def _backward_cell(spiking_i: bool, H: int, gh: Tensor, saved: tuple[Tensor, ...], ring_in: tuple[Tensor, ...],
                   cb: tuple[Tensor, ...], kc: _TernConst, kg: _TernConst | None, tc: _Tern, tg: _Tern | None,
                   gz: Tensor, ring_out: tuple[Tensor, ...], acc_b: tuple[Tensor, ...] | None,
                   acc_c: Tensor | None, acc_g: Tensor | None, scratch: tuple[Tensor, ...]) -> None:
    """The backward pass through the neurons of one diagonal, given ∂L/∂h (``gh``).

    ``saved`` = (ub, sb, ubp_prev, q, v, c_in, sc, sg): the forward histories of these cells
    (ubp_prev: the binary membranes U'(n, t−1); c_in = c(n−1, t)); ``ring_in`` = ∂L/∂U' of the
    binary neurons, of c, of g (spiking g; else any tensor) and ∂L/∂c(n, t) from (n+1, t);
    ``ring_out`` = where this diagonal's ∂L/∂U(t−1) (slot j + 1) and ∂L/∂c(n−1, t) go;
    ``cb`` = (θ, γ/θ, γ/θ², λ per binary column, 1/θ of the clip gate). Writes ∂L/∂z into ``gz``.
    """
    ub, sb, ubp_prev, q, v, c_in, sc, sg = saved
    gub_in, guc_in, gug_in, gc_in = ring_in
    gub_out, guc_out, gug_out, gc_out = ring_out
    th_b, peak_b, slope_b, lam_b, inv_th_v = cb
    gsb, tri, w, gs_c, gv, *tmp = scratch
    bH = ub.shape[1]
    s_o, gs_o = (sb[:, 2 * H:], gsb[:, 2 * H:]) if spiking_i else (sb[:, H:], gsb[:, H:])
    torch.mul(gh, sc, out=gs_o)
    torch.mul(gh, s_o, out=gs_c)
    gu_c = _ternary_backward(gs_c, guc_in, tc, kc, acc_c, tmp)
    torch.mul(gu_c, kc.lam, out=guc_out)
    gc = gu_c.add_(gc_in)  # ∂L/∂c(n, t), all paths
    torch.mul(gc, c_in, out=gsb[:, :H])  # ∂L/∂s_f
    torch.mul(gc, sb[:, :H], out=gc_out)  # ∂L/∂c(n−1, t)
    if spiking_i:
        torch.mul(gc, v, out=gsb[:, H:2 * H])  # ∂L/∂s_i
        torch.mul(gc, sb[:, H:2 * H], out=gv)  # ∂L/∂g
    else:
        assert tg is not None and kg is not None
        torch.mul(gc, sg, out=gv)  # ∂L/∂i
        gs_g = gc.mul_(v)  # ∂L/∂s_g (gc is done with)
        gu_g = _ternary_backward(gs_g, gug_in, tg, kg, acc_g, tmp)
        gz[:, 3 * H:].copy_(gu_g)
        torch.mul(gu_g, kg.lam, out=gug_out)
    # the clip gate: ∂z = ∂v·[lo ≤ z/θ ≤ 1]/θ; ∂θ = −Σ ∂z·(z/θ)
    m = torch.eq(q, v, out=tmp[1])
    gzv = torch.mul(gv, m, out=gz[:, bH:bH + H])
    gzv.mul_(inv_th_v)
    # binary neurons: ∂L/∂U = ∂L/∂U' + (∂L/∂s − θ·∂L/∂U')·tri(U)
    _tri(ub, th_b, peak_b, slope_b, out=tri)
    torch.addcmul(gsb, gub_in, th_b, value=-1.0, out=w)
    w.mul_(tri)
    gub = torch.add(gub_in, w, out=gz[:, :bH])
    torch.mul(gub, lam_b, out=gub_out)
    if acc_b is not None:
        b_s, b_wu, b_lam, v_q = acc_b
        v_q.addcmul_(gzv, q)
        b_s.addcmul_(gub_in, sb)
        b_wu.addcmul_(w, ub)
        b_lam.addcmul_(gub, ubp_prev)


def _dims(spec: WavefrontSpec, wh: Tensor, B: int) -> tuple[int, int, int, int, int, int, int, int]:
    """(N, T, D, H, B, T·B, nb, nb·H) of a layer run of batch B: elements, steps, diagonals,
    units, batch, rows per diagonal, binary gates, their columns."""
    N, T, H = spec.N, spec.T, wh.shape[1]
    nb = _binary_gates(spec.spiking_i)
    return N, T, N + T - 1, H, B, T * B, nb, nb * H


def _gradient_buffers(spec: WavefrontSpec, hd: Tensor, nb: int) -> tuple[Tensor, list[tuple[Tensor, ...]], Tensor]:
    """The backward pass's ∂z history ``[D, T·B, 4H]`` (rows without a cell zeroed; from the
    workspace), its two sets of ring buffers (read the one diagonal k+1 wrote, write the other):
    ∂L/∂U' of the binary neurons, of c, of g (written at slot j + 1 by (n, t+1), read at slot j),
    ∂L/∂c(n, t) through c_in of (n+1, t) (same slot); and a ``[T·B, H]`` scratch for ∂L/∂h."""
    N, T = spec.N, spec.T
    D, TB, B, H = hd.shape[0], T * hd.shape[2], hd.shape[2], hd.shape[3]
    dtype, device = hd.dtype, hd.device

    def new(rows: int, width: int) -> Tensor:
        return torch.zeros(rows, width, dtype=dtype, device=device)

    with _no_nan_fill():
        g_all = WORKSPACE.take((D, TB, 4 * H), dtype, device)
    _zero_invalid(g_all, N, T, B)
    rings = [tuple(new((T + 1) * B, width) for width in (nb * H, H, H)) + (new(TB, H),) for _ in range(2)]
    return g_all, rings, new(TB, H)


def wavefront_backward(spec: WavefrontSpec, u: Tensor, wx: Tensor, wh: Tensor, params: Sequence[Tensor],
                       hist: dict[str, Any], grad_hd: Tensor | None,
                       need: Sequence[bool]) -> tuple[Tensor | None, ...]:
    """Gradients of (u, wx, b, wh, *params) (see :func:`wavefront_forward`); ``need``: which ones."""
    if hist.get("fused"):
        kernels = fused_cells.kernels(hist["hd"].dtype, hist["hd"].device)
        assert kernels is not None  # the forward pass used them
        return _fused_backward(spec, u, wx, wh, params, hist, grad_hd, need, kernels[1])
    hd: Tensor = hist["hd"]
    N, T, D, H, B, TB, nb, bH = _dims(spec, wh, hd.shape[2])
    spiking_i = spec.spiking_i
    p = _unpack(spiking_i, params, H)
    dtype, device = hd.dtype, hd.device
    want_params = any(need[4:])  # θ and λ accumulators are cheap: all or none
    gamma = spec.gamma

    def new(rows: int, width: int) -> Tensor:
        return torch.zeros(rows, width, dtype=dtype, device=device)

    g_all, rings, gh_scr = _gradient_buffers(spec, hd, nb)
    g_k = list(g_all.unbind(0))
    addmm, _ = _products(dtype, device, "hb" in hist)
    wh_c = wh.contiguous() if addmm is not None else wh
    with _no_nan_fill():
        scratch = tuple(new(TB, bH) for _ in range(3)) + tuple(new(TB, H) for _ in range(7))
        acc_b = acc_c = acc_g = None
        if want_params:
            acc_b = (new(TB, bH), new(TB, bH), new(TB, bH), new(TB, H))
            acc_c = new(D, 7)
            if not spiking_i:
                acc_g = new(D, 7)
        zeros = new((T + 1) * B, bH)
        # bfloat16 recurrent GEMMs (the forward pass kept h in bfloat16): ∂z kept in bfloat16 too
        hb: Tensor | None = hist.get("hb")
        gzb_all, whb, ghb = _bf16_backward_buffers(hb, wh, N, T, B)
        gzb_k = list(gzb_all.unbind(0)) if gzb_all is not None else []

    def per_diag(key: str) -> list[Tensor]:
        return list(hist[key].unbind(0))

    ub_k, sb_k, ubp_k, q_k, v_k, c_k, sc_k = (per_diag(key) for key in ("ub", "sb", "ubp", "q", "v", "c", "sc"))
    sg_k = per_diag("sg") if not spiking_i else []
    ext_k = list(grad_hd.reshape(D, TB, H).contiguous().unbind(0)) if grad_hd is not None else None
    tc_k = {key: per_diag("c_" + key) for key in TERNARY_KEYS if "c_" + key in hist}
    tg_k = {key: per_diag("g_" + key) for key in TERNARY_KEYS if "g_" + key in hist}
    peak_b = gamma / p.th_b
    cb = (p.th_b, peak_b, peak_b / p.th_b, p.lam_b, 1.0 / p.th_v)
    kc = _tern_const(p.th_c, p.th_cn, p.lam_c, spec.shift, T, gamma)
    kg = _tern_const(p.th_g, p.th_gn, p.lam_g, spec.shift, T, gamma) if not spiking_i else None  # type: ignore[arg-type]

    for k in range(D - 1, -1, -1):
        lo, hi = slot_range(k, N, T)
        r0, r1 = lo * B, hi * B
        full = r1 - r0 == TB
        rows, prev_rows = slice(r0, r1), slice(r0 + B, r1 + B)  # this diagonal's slots; slots j + 1
        gz = _cut(g_k[k], rows, full)
        # ∂L/∂h(n, t): the external gradient plus ∂z(n+1, t)·Wh
        gh = _cut(gh_scr, rows, full)
        _hidden_grad(gh, _cut(ext_k[k], rows, full) if ext_k is not None else None,
                     _cut(g_k[k + 1], rows, full) if k + 1 < D else None, wh_c,
                     _cut(gzb_k[k + 1], rows, full) if k + 1 < D and gzb_k else None, whb,
                     _cut(ghb, rows, full) if ghb is not None else None, addmm)
        rd, wr = rings[(k + 1) % 2], rings[k % 2]
        if k > 0:
            ubp_prev, c_in = ubp_k[k - 1][prev_rows], _cut(c_k[k - 1], rows, full)
            ucp_prev = tc_k["up"][k - 1][prev_rows]
            ugp_prev = tg_k["up"][k - 1][prev_rows] if tg_k else ucp_prev
        else:
            ubp_prev, c_in = zeros[prev_rows], zeros[rows, :H]
            ucp_prev = ugp_prev = zeros[prev_rows, :H]
        saved = (_cut(ub_k[k], rows, full), _cut(sb_k[k], rows, full), ubp_prev, _cut(q_k[k], rows, full),
                 _cut(v_k[k], rows, full), c_in, _cut(sc_k[k], rows, full), _cut((sg_k or g_k)[k], rows, full))
        ring_in = tuple(x[rows] for x in rd)
        ring_out = (wr[0][prev_rows], wr[1][prev_rows], wr[2][prev_rows], _cut(wr[3], rows, full))
        scr = tuple(_cut(x, rows, full) for x in scratch)
        tc = _tern_views(tc_k, k, rows, full, ucp_prev, ucp_prev)
        tg = _tern_views(tg_k, k, rows, full, ugp_prev, ugp_prev) if tg_k else None
        acc_rows = tuple(_cut(x, rows, full) for x in acc_b) if acc_b is not None else None
        _backward_cell(spiking_i, H, gh, saved, ring_in, cb, kc, kg, tc, tg, gz, ring_out, acc_rows,
                       acc_c[k] if acc_c is not None else None, acc_g[k] if acc_g is not None else None, scr)
        if gzb_k:
            gzb_k[k].copy_(g_k[k])  # all rows: the rows without a cell are 0

    sums = None
    if acc_b is not None and acc_c is not None:
        b_s, b_wu, b_lam, v_q = (a.sum(0) for a in acc_b)
        b_s, b_wu, b_lam = (x.view(nb, H).sum(1) for x in (b_s, b_wu, b_lam))
        sums = _Sums(b_s, b_wu, b_lam, v_q.sum(), acc_c.sum(0), acc_g.sum(0) if acc_g is not None else None)
    return _finish_backward(spec, u, wx, wh, params, hd, g_all, hb, gzb_all, need, sums)


FUSED_KEYS: tuple[str, ...] = ("ub", "q", "c", "c_u", "g_u", "g_sgn")
"""Histories of the compiled path (``[D, T·B, W]``): the binary membranes (W = nb·H), the clip
gate's z/θ, the cell state, the c and g neurons' membranes and the sign of g's input
(``fused_cells``; a spiking i has no g neuron)."""


def _cell_constants(spec: WavefrontSpec, p: _Params, dtype: torch.dtype) -> Tensor:
    """The constants of ``wavefront_cells.c`` (see its header), in the tensor dtype, computed as
    the PyTorch path computes them."""
    nb = _binary_gates(spec.spiking_i)
    H = p.th_b.shape[0] // nb
    th_b, lam_b = p.th_b[::H], p.lam_b[::H]
    peak_b = spec.gamma / th_b
    parts = [th_b, lam_b, peak_b, peak_b / th_b, p.th_v.reshape(1), (1.0 / p.th_v).reshape(1),
             torch.tensor([-1.0 if spec.spiking_i else 0.0], dtype=dtype)]
    for th, th_n, lam in ((p.th_c, p.th_cn, p.lam_c), (p.th_g, p.th_gn, p.lam_g)):
        if th is None or th_n is None or lam is None:
            parts.append(torch.zeros(10, dtype=dtype))
            continue
        k = _tern_const(th, th_n, lam, True, spec.T, spec.gamma)
        assert k.sig is not None and k.sig_n is not None
        parts.append(torch.stack([k.th, k.th_n, k.neg_th_n, k.lam, k.sig, k.sig_n, k.peak, k.slope, k.peak_n,
                                  k.slope_n]).reshape(10))
    return torch.cat([x.reshape(-1).to(dtype) for x in parts]).detach().contiguous()


class _Rows:
    """Addresses of the per-diagonal ``[T·B, W]`` blocks of a history (or of a ring of two)."""

    def __init__(self, full: Tensor, ring: bool) -> None:
        self.full = full
        self.base = full.data_ptr()
        self.step = full[0].numel() * full.element_size()
        self.ring = ring

    def at(self, k: int) -> int:
        """Address of diagonal k's block."""
        return self.base + (k % 2 if self.ring else k) * self.step


def _fused_forward(spec: WavefrontSpec, u: Tensor, wx: Tensor, b: Tensor, wh: Tensor, params: Sequence[Tensor],
                   keep: bool, kernel: Any) -> dict[str, Any]:
    """:func:`wavefront_forward` with the neurons of each diagonal in one compiled call."""
    N, T, D, H, B, TB, nb, _ = _dims(spec, wh, u.shape[-2])
    H4 = 4 * H
    spiking_i = spec.spiking_i
    p = _unpack(spiking_i, params, H)
    dtype, device = u.dtype, u.device
    out: dict[str, Any] = {"fused": True}
    bf16 = spec.bf16 and keep
    with _no_nan_fill():
        hd = torch.empty(D, T, B, H, dtype=dtype, device=device)
        out["hd"] = hd
        _zero_invalid(hd.view(D, TB, H), N, T, B)
        zx = WORKSPACE.take((u.numel() // u.shape[-1], H4), dtype, device)
        torch.addmm(b, u.reshape(-1, u.shape[-1]), wx.t(), out=zx)
        out["zx"] = zx  # given back by the caller
        rows_of: dict[str, _Rows] = {}
        for key in FUSED_KEYS:
            if spiking_i and key.startswith("g_"):
                continue
            width = nb * H if key == "ub" else H
            if keep:
                buf = WORKSPACE.take((D, TB, width), dtype, device)
                out[key] = buf
            else:
                buf = torch.empty(2, TB, width, dtype=dtype, device=device)
            rows_of[key] = _Rows(buf, ring=not keep)
        c_full = rows_of["c"].full
        if keep:
            _zero_invalid(c_full, N, T, B)  # c(n−1, t) of n = 0
        else:
            c_full.zero_()
        hb = None
        if bf16:
            hb = WORKSPACE.take((D, TB, H), _BF16, device)
            _zero_invalid(hb, N, T, B)
            out["hb"] = hb
        z_scr = torch.empty(TB, H4, dtype=dtype, device=device)
        r_scr = torch.empty(TB, H4, dtype=_BF16, device=device) if bf16 else None
    cst = _cell_constants(spec, p, dtype)
    hd_k = list(hd.view(D, TB, H).unbind(0))
    hb_k = list(hb.unbind(0)) if hb is not None else []
    addmm, _ = _products(dtype, device, bf16)
    wh_t = wh.t().contiguous() if addmm is not None else wh.t()
    whb_t = wh_t.to(_BF16) if bf16 else None
    ub, q, c, cu = (rows_of[key] for key in ("ub", "q", "c", "c_u"))
    gu, gs = (rows_of.get("g_u"), rows_of.get("g_sgn"))
    hd_rows = _Rows(hd.view(D, TB, H), ring=False)
    hb_rows = _Rows(hb, ring=False) if hb is not None else None
    zrow = torch.zeros(3 * H, dtype=dtype, device=device)  # U', c and U'(t−1) where there are none
    consts = (H, B, TB, nb, int(spec.shift), cst.data_ptr(), z_scr.data_ptr(), zrow.data_ptr())
    for k in range(D):
        lo, hi = slot_range(k, N, T)
        r0, r1 = lo * B, hi * B
        full = r1 - r0 == TB
        rows = slice(r0, r1)
        z = _cut(z_scr, rows, full)
        _gate_input(z, _zx_block(spec, zx, k, lo, hi, B, rows, full), _cut(hd_k[k - 1], rows, full) if k else None,
                    wh_t, _cut(hb_k[k - 1], rows, full) if k and hb_k else None, whb_t,
                    _cut(r_scr, rows, full) if r_scr is not None else None, addmm)
        kp = k - 1
        kernel(r0, r1 - r0, *consts,
               ub.at(kp) if k else None, ub.at(k), q.at(k), c.at(kp) if k else None, c.at(k),
               cu.at(kp) if k else None, cu.at(k),
               gu.at(kp) if gu is not None and k else None, gu.at(k) if gu is not None else None,
               gs.at(k) if gs is not None else None,
               hd_rows.at(k), hb_rows.at(k) if hb_rows is not None else None)
    return out


def _fused_backward(spec: WavefrontSpec, u: Tensor, wx: Tensor, wh: Tensor, params: Sequence[Tensor],
                    hist: dict[str, Any], grad_hd: Tensor | None, need: Sequence[bool],
                    kernel: Any) -> tuple[Tensor | None, ...]:
    """:func:`wavefront_backward` of a :func:`_fused_forward` pass, one compiled call per diagonal."""
    hd: Tensor = hist["hd"]
    N, T, D, H, B, TB, nb, _ = _dims(spec, wh, hd.shape[2])
    spiking_i = spec.spiking_i
    p = _unpack(spiking_i, params, H)
    dtype, device = hd.dtype, hd.device
    g_all, rings, gh_scr = _gradient_buffers(spec, hd, nb)
    acc = torch.zeros(D, fused_cells.NACC, dtype=torch.float64, device=device) if any(need[4:]) else None
    hb: Tensor | None = hist.get("hb")
    addmm, _ = _products(dtype, device, hb is not None)
    wh_c = wh.contiguous() if addmm is not None else wh
    gzb_all, whb, ghb = _bf16_backward_buffers(hb, wh, N, T, B)
    g_k = list(g_all.unbind(0))
    gzb_k = list(gzb_all.unbind(0)) if gzb_all is not None else []
    ext_k = list(grad_hd.reshape(D, TB, H).contiguous().unbind(0)) if grad_hd is not None else None
    cst = _cell_constants(spec, p, dtype)
    ub, q, c, cu = (_Rows(hist[key], ring=False) for key in ("ub", "q", "c", "c_u"))
    gu, gs = ((_Rows(hist[key], ring=False) if key in hist else None) for key in ("g_u", "g_sgn"))
    g_rows = _Rows(g_all, ring=False)
    gzb_rows = _Rows(gzb_all, ring=False) if gzb_all is not None else None
    ring_ptrs = [tuple(x.data_ptr() for x in ring) for ring in rings]
    acc_rows = _Rows(acc, ring=False) if acc is not None else None
    zrow = torch.zeros(3 * H, dtype=dtype, device=device)
    consts = (H, B, TB, nb, int(spec.shift), cst.data_ptr(), gh_scr.data_ptr(), zrow.data_ptr())
    threads = fused_cells.kernel_threads()
    for k in range(D - 1, -1, -1):
        lo, hi = slot_range(k, N, T)
        r0, r1 = lo * B, hi * B
        full = r1 - r0 == TB
        rows = slice(r0, r1)
        _hidden_grad(_cut(gh_scr, rows, full), _cut(ext_k[k], rows, full) if ext_k is not None else None,
                     _cut(g_k[k + 1], rows, full) if k + 1 < D else None, wh_c,
                     _cut(gzb_k[k + 1], rows, full) if k + 1 < D and gzb_k else None, whb,
                     _cut(ghb, rows, full) if ghb is not None else None, addmm)
        kp = k - 1
        rd, wr = ring_ptrs[(k + 1) % 2], ring_ptrs[k % 2]
        kernel(threads, r0, r1 - r0, *consts,
               ub.at(kp) if k else None, ub.at(k), q.at(k), c.at(kp) if k else None, c.at(k),
               cu.at(kp) if k else None, cu.at(k),
               gu.at(kp) if gu is not None and k else None, gu.at(k) if gu is not None else None,
               gs.at(k) if gs is not None else None, *rd, *wr,
               g_rows.at(k), gzb_rows.at(k) if gzb_rows is not None else None,
               acc_rows.at(k) if acc_rows is not None else None)
    sums = None
    if acc is not None:
        tot = acc.sum(0).to(dtype)
        sums = _Sums(tot[0:nb], tot[3:3 + nb], tot[6:6 + nb], tot[9], tot[10:17], None if spiking_i else tot[17:24])
    return _finish_backward(spec, u, wx, wh, params, hd, g_all, hb, gzb_all, need, sums)


class _Sums(NamedTuple):
    """The θ/λ gradient sums of a layer: per binary gate Σ ∂L/∂U'·s, Σ w·U, Σ ∂L/∂U·U'(t−1);
    Σ ∂z·(z/θ) of the clip gate; the :data:`TERNARY_SUMS` of the c neuron and of a spiking g."""

    b_s: Tensor
    b_wu: Tensor
    b_lam: Tensor
    v_q: Tensor
    tern_c: Tensor
    tern_g: Tensor | None


def _bf16_backward_buffers(hb: Tensor | None, wh: Tensor, N: int, T: int,
                           B: int) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """(∂z history in bfloat16 with its rows without a cell zeroed, ``Wh`` in bfloat16, a
    ``[T·B, H]`` bfloat16 scratch) when the forward pass kept h in bfloat16 (``hb``), else Nones."""
    if hb is None:
        return None, None, None
    H = wh.shape[1]
    with _no_nan_fill():
        gzb_all = WORKSPACE.take((N + T - 1, T * B, 4 * H), _BF16, wh.device)
        ghb = torch.empty(T * B, H, dtype=_BF16, device=wh.device)
    _zero_invalid(gzb_all, N, T, B)
    return gzb_all, wh.to(_BF16), ghb


def _finish_backward(spec: WavefrontSpec, u: Tensor, wx: Tensor, wh: Tensor, params: Sequence[Tensor], hd: Tensor,
                     g_all: Tensor, hb: Tensor | None, gzb_all: Tensor | None, need: Sequence[bool],
                     sums: _Sums | None) -> tuple[Tensor | None, ...]:
    """The gradients of (u, wx, b, wh, *params) from the ∂z history ``g_all`` [D, T·B, 4H] (and
    its bfloat16 copy) and the θ/λ sums; gives ``g_all`` and ``gzb_all`` back to the workspace."""
    N, T, D, H, B, TB, nb, _ = _dims(spec, wh, hd.shape[2])
    H4 = 4 * H
    dtype, device = g_all.dtype, g_all.device
    grads: list[Tensor | None] = [None] * (4 + len(params))
    # the input projection zx = u·wxᵀ + b: ∂zx(n) = Σ_t ∂z(n, t) for a direct input, else ∂z itself
    gzx = None
    if spec.direct:
        with _no_nan_fill():
            gzx = WORKSPACE.take((N, B, H4), dtype, device)
        s_k, s_j = TB * H4, B * H4
        torch.sum(g_all.as_strided((N, T, B, H4), (s_k, s_k - s_j, H4, 1), (T - 1) * s_j), dim=1, out=gzx)
        gzx2 = gzx.view(N * B, H4)
    else:
        gzx2 = g_all.view(D * TB, H4)
    if need[0]:
        grads[0] = torch.mm(gzx2, wx).view(u.shape)
    if need[1]:
        grads[1] = torch.mm(u.reshape(-1, u.shape[-1]).t(), gzx2).t()
    if need[2]:
        grads[2] = gzx2.sum(0)
    if need[3]:
        if D == 1:
            grads[3] = torch.zeros_like(wh)
        elif hb is not None and gzb_all is not None:
            grads[3] = torch.mm(hb[:-1].reshape(-1, H).t(), gzb_all[1:].reshape(-1, H4)).t().to(dtype)
        elif (tmm := _products(dtype, device, False)[1]) is not None:
            grads[3] = _sparse_tmm(tmm, hd[:-1].reshape(-1, H), g_all[1:].reshape(-1, H4)).t()
        else:
            grads[3] = torch.mm(hd[:-1].reshape(-1, H).t(), g_all[1:].reshape(-1, H4)).t()
    WORKSPACE.give([g_all, gzx, gzb_all])
    if sums is not None:
        two_t = 2 * T
        pg: list[Tensor] = []
        pg += [-(sums.b_s[i] + sums.b_wu[i] / params[i]) for i in range(nb)]  # θ of the binary gates
        pg += [sums.b_lam[i] for i in range(nb)]  # their λ
        pg.append(-sums.v_q)  # θ of the clip gate

        def ternary_grads(acc: Tensor, th: Tensor, th_n: Tensor) -> list[Tensor]:
            s_p, s_n, wp_u, wn_u, lam, pos, neg = acc
            g_th = -(s_p + wp_u / th)
            g_thn = s_n - wn_u / th_n
            if spec.shift:
                g_th = g_th + pos / two_t
                g_thn = g_thn - neg / two_t
            return [g_th, g_thn, lam]

        if sums.tern_g is not None:
            pg += ternary_grads(sums.tern_g, params[2 * nb + 1], params[2 * nb + 2])
        pg += ternary_grads(sums.tern_c, params[-3], params[-2])
        for i, (g, wanted) in enumerate(zip(pg, need[4:], strict=True)):
            grads[4 + i] = g.reshape(()) if wanted else None
    return tuple(grads)


def _history_tensors(hist: dict[str, Any]) -> list[Tensor]:
    return [val for key, val in hist.items() if key != "hd" and isinstance(val, Tensor)]


class WavefrontFunction(torch.autograd.Function):
    """``WavefrontFunction.apply(spec, u, wx, b, wh, *params)`` → ``hd`` (one layer, one node).

    ``u``, ``wx``, ``b``, ``wh`` and the 0-dim ``params`` as in :func:`wavefront_forward`;
    ``hd`` is ``[D, T, B, H]`` (diagonal layout, see :func:`grid_view`). With ``spec.record``
    the seven trace tensors (``[N, T, B, H]``, keys :data:`HISTORY_KEYS`, not differentiable)
    follow it.
    """

    @staticmethod
    def forward(ctx: Any, spec: WavefrontSpec, u: Tensor, wx: Tensor, b: Tensor, wh: Tensor,
                *params: Tensor) -> Any:
        """Run the layer (:func:`wavefront_forward`); keep what the backward pass needs."""
        train = spec.train and any(ctx.needs_input_grad[1:])
        hist = wavefront_forward(spec, u, wx, b, wh, params, keep=spec.record or train)
        WORKSPACE.give([hist.pop("zx")])
        ctx.spec = spec
        trace = trace_of(spec, hist, wh.shape[1]) if spec.record else None
        if train:
            ctx.hist = {key: val for key, val in hist.items() if key != "hd"}
            ctx.save_for_backward(hist["hd"], u, wx, wh, *params)
        elif spec.record:
            WORKSPACE.give(_history_tensors(hist))
        if trace is None:
            return hist["hd"]
        outs = [trace[key] for key in HISTORY_KEYS]
        ctx.mark_non_differentiable(*outs)
        return (hist["hd"], *outs)

    @staticmethod
    def backward(ctx: Any, grad_hd: Tensor | None, *_: Any) -> Any:
        """Gradients of (spec, u, wx, b, wh, *params) (:func:`wavefront_backward`)."""
        if getattr(ctx, "hist", None) is None:
            raise RuntimeError("the spiking wavefront's histories are reused after its backward pass: a second "
                               "backward pass (retain_graph=True) is not supported; use forward_legacy for that")
        hd, u, wx, wh, *params = ctx.saved_tensors
        hist = dict(ctx.hist, hd=hd)
        ctx.hist = None
        grads = wavefront_backward(ctx.spec, u, wx, wh, params, hist, grad_hd, ctx.needs_input_grad[1:])
        WORKSPACE.give(_history_tensors(hist))
        return (None, *grads)

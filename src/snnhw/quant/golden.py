"""Integer golden models: the composition of :mod:`snnhw.quant.arith` primitives into cells,
layers and whole networks, exactly as ``docs/integer-contract.md`` specifies.

This module and ``arith.py`` are the only places where snnhw's integer semantics live. The
quantizer (accuracy and saturation reports), the hardware generators' tests and the cocotb
testbenches compute their expectations by calling the functions below.

Public API
----------
Network level (batched; every array int64 unless stated):

* :func:`run_spiking` — the spiking LSTM (``FrozenSpiking``) on a batch of sequences, direct,
  rate or explicit-spike input, variable lengths; returns :class:`SpikingResult`.
* :func:`run_baseline` — the MAC baseline (``FrozenBaseline``); returns :class:`BaselineResult`.
* :func:`head_forward` — the integer FC head, shared by both.
* :func:`rate_encode` — the on-chip rate encoder for a whole batch (xorshift32 per feature,
  reset at every sequence start).
* :func:`pack_sequences` — stack a list of variable-length sequences into ``(x, lengths)``.

Block level (the same code path the network runners use; for RTL block tests):

* :func:`input_projection` — layer-1 direct-input MAC ``(Wx·x_q) >> x_shift[a]`` (once per element).
* :func:`spike_projection` — ``Wx·u`` for a spike input (rate / spikes / layer ≥ 2): add/sub/skip.
* :func:`gate_preactivation` — ``z = P + Wh·h(n−1,t) + b``.
* :func:`initial_membranes` — all-zero membranes of one element (``U(n,0) = 0``).
* :func:`cell_from_preactivation` — one cell (n,t) from its ``z``: the gate neurons, the cell
  update, the c neuron and ``h``; returns :class:`CellStep`.
* :func:`spiking_cell_step` — :func:`gate_preactivation` followed by :func:`cell_from_preactivation`.
* :func:`baseline_cell_step` — one element of a baseline layer.

Exactness of the matrix products: the weights and the spike / activation operands are
integers, and a product is computed in float32 BLAS only when the bound
``max|a| · max_col Σ|W|`` (an upper bound on every partial sum) is below 2**24, in float64
BLAS when it is below 2**53, and otherwise as an int64 matmul (bound checked < 2**63). Every
partial sum is then an exactly representable integer, so the result is exact whatever the
summation order (see :func:`exact_matmul`).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import numpy as np

from snnhw.errors import UserError
from snnhw.quant import arith
from snnhw.quant.counters import baseline_counters, spiking_counters
from snnhw.quant.frozen import (
    BaselineLayer,
    BinaryNeuron,
    ClipGate,
    FrozenBaseline,
    FrozenSpiking,
    IntHead,
    SpikingLayer,
    TernaryNeuron,
)

SPIKING_REGISTERS = ("U_f", "U_i", "U_g", "U_o", "U_c", "c", "acc")
"""Keys of a spiking layer's saturation counts: the saturating registers (``U_i``/``U_g`` only
when that gate spikes) and ``acc``, pre-activations z outside the signed ``acc_bits`` range
(never clamped: a nonzero count means the frozen model's ``acc_bits`` is too narrow and the
hardware accumulator would wrap)."""

BASELINE_REGISTERS = ("c", "acc")
"""Keys of a baseline layer's saturation counts (as :data:`SPIKING_REGISTERS`)."""

_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53
_I64_LIMIT = 1 << 63


# --------------------------------------------------------------------------------------------
# exact integer matrix products


def _blas_dtype(bound: int) -> Any:
    """The cheapest dtype whose matmul is exact for partial sums bounded by ``bound``.

    float32 holds every integer below 2**24 exactly and float64 every integer below 2**53, so
    when every partial sum is below that bound each addition of the BLAS kernel is exact in
    any summation order (fused multiply-adds included). ``None`` means int64 matmul, exact
    while the bound is below 2**63 (asserted).
    """
    if bound < _F32_EXACT:
        return np.float32
    if bound < _F64_EXACT:
        return np.float64
    assert bound < _I64_LIMIT, f"matmul bound {bound} does not fit int64"
    return None


def exact_matmul(a: np.ndarray, w_t: np.ndarray, a_max: int | None = None) -> np.ndarray:
    """Exact ``a @ w_t`` of integer arrays (int64 result) through the fastest exact BLAS.

    Args:
        a: int [..., K] operand (spikes, activations or inputs).
        w_t: int [K, M] (a transposed weight matrix).
        a_max: a known bound on ``|a|`` (e.g. 1 for spikes); computed when None.

    ``bound = a_max · max_m Σ_k |w_t[k, m]|`` bounds every partial sum of every output; the
    product runs in :func:`_blas_dtype` (bound).
    """
    return _LayerCache.from_matrix(w_t).matmul("x", a, a_max)


class _LayerCache:
    """Transposed weights of one layer in the BLAS dtypes (an optimisation; no semantics)."""

    def __init__(self, w_x: np.ndarray, w_h: np.ndarray | None) -> None:
        self.w_t = {"x": np.ascontiguousarray(np.asarray(w_x, dtype=np.int64).T)}
        if w_h is not None:
            self.w_t["h"] = np.ascontiguousarray(np.asarray(w_h, dtype=np.int64).T)
        self._colsum = {k: int(np.abs(w).sum(axis=0).max()) if w.size else 0 for k, w in self.w_t.items()}
        self._float: dict[tuple[str, Any], np.ndarray] = {}

    @classmethod
    def from_matrix(cls, w_t: np.ndarray) -> "_LayerCache":
        """A cache holding one transposed matrix ``w_t`` [K, M] under the key "x"."""
        return cls(np.asarray(w_t).T, None)

    def matmul(self, which: str, a: np.ndarray, a_max: int | None) -> np.ndarray:
        """Exact ``a @ W^T`` for W = w_x (which="x") or w_h ("h"); ``a_max`` bounds |a|."""
        if a_max is None:
            a_max = int(np.abs(a).max()) if np.size(a) else 0
        a = np.asarray(a)
        w_t = self.w_t[which]
        flat = a.reshape(-1, a.shape[-1])  # one 2-D GEMM (stacked matmul is much slower)
        dtype = _blas_dtype(a_max * self._colsum[which])
        if dtype is None:
            out = np.matmul(flat.astype(np.int64), w_t)
        else:
            key = (which, dtype)
            if key not in self._float:
                self._float[key] = w_t.astype(dtype)
            out = np.matmul(flat.astype(dtype), self._float[key]).astype(np.int64)
        return out.reshape(a.shape[:-1] + (w_t.shape[1],))


_RUN = threading.local()
"""Per thread, ``caches``: the weight caches of the layers of the network run in progress (absent
or None outside a run). Per thread because the build verifies several cores at once."""


def _cache(layer: SpikingLayer | BaselineLayer) -> _LayerCache:
    """The layer's weight cache: shared within one network run, rebuilt for each block call."""
    caches: dict[int, _LayerCache] | None = getattr(_RUN, "caches", None)
    if caches is None:
        return _LayerCache(layer.w_x, layer.w_h)
    hit = caches.get(id(layer))
    if hit is None:
        hit = caches[id(layer)] = _LayerCache(layer.w_x, layer.w_h)
    return hit


F = TypeVar("F", bound=Callable[..., Any])


def _with_run_caches(func: F) -> F:
    """Decorator: the layer weight caches live for the duration of one network run."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_RUN, "caches", None)
        _RUN.caches = {}
        try:
            return func(*args, **kwargs)
        finally:
            _RUN.caches = outer

    return wrapper  # type: ignore[return-value]


def _gate_shift(x_shift: tuple[int, int, int, int], hidden: int) -> np.ndarray:
    """Per-row shift of a stacked [4H] projection: x_shift[a] repeated over gate a's H rows."""
    return np.repeat(np.asarray(x_shift, dtype=np.int64), hidden)


# --------------------------------------------------------------------------------------------
# projections


def input_projection(layer: SpikingLayer | BaselineLayer, x_q: np.ndarray) -> np.ndarray:
    """Layer-1 direct-input projection ``P_a = (Σ_d Wx[a,k,d]·x_q[d]) >> x_shift[a]``.

    Args:
        layer: the first layer (spiking or baseline).
        x_q: int64 [..., D] direct-encoded input (signed ``input_bits``).

    Returns int64 [..., 4H] in each gate's unit: a true MAC, computed once per element and
    reused for every time step t.
    """
    x_q = np.asarray(x_q, dtype=np.int64)
    acc = _cache(layer).matmul("x", x_q, int(np.abs(x_q).max()) if x_q.size else 0)
    return acc >> _gate_shift(layer.x_shift, layer.hidden_size)


def spike_projection(layer: SpikingLayer, u: np.ndarray) -> np.ndarray:
    """Projection of a spike input ``P_a = Σ_d Wx[a,k,d]·u[d]``, u ∈ {−1, 0, 1} (add/sub/skip).

    Used for rate / explicit-spike layer-1 input and for every layer ≥ 2 (u = h of the layer
    below); there is no shift. Returns int64 [..., 4H].
    """
    return _cache(layer).matmul("x", np.asarray(u), 1)


def gate_preactivation(layer: SpikingLayer, p: np.ndarray, h_prev: np.ndarray) -> np.ndarray:
    """``z = P + Σ_j Wh[a,k,j]·h(n−1,t)[j] + b`` for every gate row (exact).

    Args:
        p: int64 [..., 4H] input projection of the cell (broadcastable to h_prev's batch shape).
        h_prev: int [..., H] in {−1, 0, 1}, h of the previous element at the same t (0 for n=1).

    Returns int64 [..., 4H]; |z| < 2**(acc_bits−1) for a valid frozen model.
    """
    rec = _cache(layer).matmul("h", np.asarray(h_prev), 1)
    return rec + (p + np.asarray(layer.bias, dtype=np.int64))  # p + b first: often one row per element


# --------------------------------------------------------------------------------------------
# one spiking cell


@dataclass
class CellStep:
    """Everything one spiking cell (n, t) computes (arrays [..., H] unless stated).

    Attributes:
        z: int64 [..., 4H] gate pre-activations (f, i, g, o blocks).
        f: s_f ∈ {0, 1}.
        i: s_i ∈ {0, 1} when i spikes, else the non-spiking value clip(z_i, 0, θ_i).
        g: s_g ∈ {−1, 0, 1} when g spikes, else clip(z_g, −θ_g, θ_g).
        o: s_o ∈ {0, 1}.
        c: cell state c(n,t) (signed ``cell_bits``, in the non-spiking gate's unit).
        s_c: spike of the c neuron ∈ {−1, 0, 1}.
        h: s_o·s_c ∈ {−1, 0, 1}.
        membranes: membranes after this step, keys "f", "o", "c" and "i" / "g" when spiking.
        clamped: when requested, bool flags per register ("U_f", ..., "U_c", "c"): the update
            of this step was clamped by saturation.
    """

    z: np.ndarray
    f: np.ndarray
    i: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray
    s_c: np.ndarray
    h: np.ndarray
    membranes: dict[str, np.ndarray]
    clamped: dict[str, np.ndarray] | None = None


def initial_membranes(layer: SpikingLayer, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """All-zero membranes (``U(n,0) = 0``) of every spiking neuron, each int64 ``shape + (H,)``."""
    names = ["f", "o", "c"]
    names += [gate for gate in ("i", "g") if not isinstance(getattr(layer, gate), ClipGate)]
    return {name: np.zeros(shape + (layer.hidden_size,), dtype=np.int64) for name in names}


def _clamped(raw: np.ndarray, bits: int) -> np.ndarray:
    """Flags where ``arith.saturate(raw, bits)`` changes the value (a saturation event)."""
    return arith.saturate(raw, bits) != raw


def _binary(neuron: BinaryNeuron, u: np.ndarray, z: np.ndarray, flags: dict[str, np.ndarray] | None,
            name: str) -> tuple[np.ndarray, np.ndarray]:
    """Binary LIF step of ``neuron`` (and its saturation flag when ``flags`` is a dict)."""
    if flags is not None:
        flags["U_" + name] = _clamped(arith.leak(u, neuron.leak, neuron.leak_rounding) + z, neuron.membrane_bits)
    return arith.binary_lif(u, z, neuron.theta, neuron.leak, neuron.leak_rounding, neuron.membrane_bits)


def _ternary(neuron: TernaryNeuron, u: np.ndarray, y: np.ndarray, flags: dict[str, np.ndarray] | None,
             name: str) -> tuple[np.ndarray, np.ndarray]:
    """Ternary LIF step of ``neuron`` (and its saturation flag when ``flags`` is a dict)."""
    if flags is not None:
        raw = (arith.leak(u, neuron.leak, neuron.leak_rounding)
               + arith.ternary_input_shift(y, neuron.shift_pos, neuron.shift_neg))
        flags["U_" + name] = _clamped(raw, neuron.membrane_bits)
    return arith.ternary_lif(u, y, neuron.theta_pos, neuron.theta_neg, neuron.shift_pos, neuron.shift_neg,
                             neuron.leak, neuron.leak_rounding, neuron.membrane_bits)


def cell_from_preactivation(
    layer: SpikingLayer,
    z: np.ndarray,
    membranes: dict[str, np.ndarray],
    c_prev: np.ndarray,
    *,
    flag_saturation: bool = False,
) -> CellStep:
    """One spiking cell (n, t) given its pre-activations (contract §2).

    Args:
        layer: the spiking layer.
        z: int64 [..., 4H] from :func:`gate_preactivation`.
        membranes: the element's membranes after time step t−1 (:func:`initial_membranes` at t=1).
        c_prev: int64 [..., H] cell state c(n−1, t) (0 for n = 1).
        flag_saturation: also return per-register clamp flags.

    Gate neurons: f, o binary LIF; i binary LIF or ``clip(z_i, 0, θ_i)``; g ternary LIF or
    ``clip(z_g, −θ_g, θ_g)``. Then ``q = s_i ? g : 0`` (non-spiking g) or ``s_g·i`` (non-spiking
    i), ``c = sat_CW((s_f ? c_prev : 0) + q)``, ``s_c`` = ternary LIF of c, ``h = s_o·s_c``.
    """
    hidden = layer.hidden_size
    zf, zi, zg, zo = (z[..., k * hidden:(k + 1) * hidden] for k in range(4))
    flags: dict[str, np.ndarray] | None = {} if flag_saturation else None
    new: dict[str, np.ndarray] = {}
    s_f, new["f"] = _binary(layer.f, membranes["f"], zf, flags, "f")
    s_o, new["o"] = _binary(layer.o, membranes["o"], zo, flags, "o")
    if isinstance(layer.i, ClipGate):
        i_val = arith.clip(zi, layer.i.lo, layer.i.hi)
    else:
        i_val, new["i"] = _binary(layer.i, membranes["i"], zi, flags, "i")
    if isinstance(layer.g, ClipGate):
        g_val = arith.clip(zg, layer.g.lo, layer.g.hi)
    else:
        g_val, new["g"] = _ternary(layer.g, membranes["g"], zg, flags, "g")
    if isinstance(layer.g, ClipGate):
        q = arith.spike_select(i_val, g_val)
    else:
        q = arith.spike_select(g_val, i_val)
    if flags is not None:
        flags["c"] = _clamped(arith.spike_select(s_f, c_prev) + q, layer.cell_bits)
    c = arith.cell_update(c_prev, s_f, q, layer.cell_bits)
    s_c, new["c"] = _ternary(layer.c, membranes["c"], c, flags, "c")
    h = arith.spike_select(s_o, s_c)
    return CellStep(z=z, f=s_f, i=i_val, g=g_val, o=s_o, c=c, s_c=s_c, h=h, membranes=new, clamped=flags)


def spiking_cell_step(
    layer: SpikingLayer,
    membranes: dict[str, np.ndarray],
    p: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    *,
    flag_saturation: bool = False,
) -> CellStep:
    """One spiking cell (n, t): ``z`` = :func:`gate_preactivation` then :func:`cell_from_preactivation`.

    Args:
        membranes: membranes of element n after time step t−1 (zeros at t = 1).
        p: int64 [..., 4H] input projection of (n, t) (direct: the element's MAC result).
        h_prev, c_prev: h(n−1, t) and c(n−1, t) (zeros for n = 1).
    """
    z = gate_preactivation(layer, p, h_prev)
    return cell_from_preactivation(layer, z, membranes, c_prev, flag_saturation=flag_saturation)


# --------------------------------------------------------------------------------------------
# rate encoder, head, input checks


def rate_encode(model: FrozenSpiking, x_q: np.ndarray) -> np.ndarray:
    """Rate-encode a batch of sequences (contract §1).

    Args:
        x_q: int64 [B, N, D] rate-quantized input (|x_q| ≤ 2**rate_bits − 1).

    Every sequence starts from ``lfsr_seeds``; each element steps every generator T times.
    Returns int64 [B, N, T, D] spikes in {−1, 0, 1}.

    Raises:
        UserError: a code outside ``[−(2^R − 1), 2^R − 1]``, in particular −2^R, which the signed
            R+1-bit input lane can carry but which is not a rate code (contract §1; the
            hardware encoder does not implement it).
    """
    x_q = np.asarray(x_q, dtype=np.int64)
    top = (1 << model.rate_bits) - 1
    if x_q.size and (int(x_q.min()) < -top or int(x_q.max()) > top):
        raise UserError(f"rate-coded x_q values must lie in [{-top}, {top}] (|x_q| ≤ 2^rate_bits − 1, "
                        f"rate_bits = {model.rate_bits}); got {int(x_q.min())}..{int(x_q.max())}")
    batch, length, width = x_q.shape
    states = np.broadcast_to(np.asarray(model.lfsr_seeds, dtype=np.int64), (batch, width)).copy()
    out = np.empty((batch, length, model.T, width), dtype=np.int64)
    for n in range(length):
        out[:, n], states = arith.rate_spikes(x_q[:, n], states, model.T, model.rate_bits)
    return out


def head_forward(head: IntHead, r: np.ndarray) -> np.ndarray:
    """The integer FC head (contract §3) on readouts ``r`` int64 [B, H]; returns logits int64 [B, C].

    ``logits = Wout·r + bout``, or with a hidden layer
    ``a = clip((Wh1·r + bh1) >> hidden_shift, 0, 2**hidden_bits − 1)``, ``logits = Wout·a + bout``.
    """
    a = np.asarray(r, dtype=np.int64)
    if head.w_hidden is not None:
        hidden = exact_matmul(a, np.asarray(head.w_hidden, dtype=np.int64).T) + np.asarray(head.b_hidden)
        a = arith.clip(hidden >> head.hidden_shift, 0, (1 << head.hidden_bits) - 1)
    return exact_matmul(a, np.asarray(head.w_out, dtype=np.int64).T) + np.asarray(head.b_out, dtype=np.int64)


def pack_sequences(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length sequences ``[N_b, ...]`` into a zero-padded int64 ``[B, N_max, ...]``.

    Returns (array, lengths int64 [B]).
    """
    if not sequences:
        raise UserError("no sequences to pack")
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    first = np.asarray(sequences[0])
    out = np.zeros((len(sequences), int(lengths.max())) + first.shape[1:], dtype=np.int64)
    for b, seq in enumerate(sequences):
        out[b, : len(seq)] = np.asarray(seq, dtype=np.int64)
    return out, lengths


def _check_lengths(lengths: np.ndarray | None, batch: int, length: int) -> np.ndarray:
    """Validated lengths int64 [B] (all N when None)."""
    if lengths is None:
        return np.full(batch, length, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (batch,):
        raise UserError(f"lengths has shape {lengths.shape}, expected ({batch},)")
    if batch and (lengths.min() < 1 or lengths.max() > length):
        raise UserError(f"sequence lengths must lie in 1..{length}")
    return lengths


def _check_int_array(name: str, x: np.ndarray, ndim: int, last: int, lo: int, hi: int) -> np.ndarray:
    """Validate an integer input array's rank, last dimension and value range."""
    x = np.asarray(x)
    if x.ndim != ndim or x.shape[-1] != last:
        raise UserError(f"{name} has shape {x.shape}, expected {ndim} dimensions ending in {last}")
    if not np.issubdtype(x.dtype, np.integer):
        raise UserError(f"{name} must be an integer array (got {x.dtype})")
    if x.size and (x.min() < lo or x.max() > hi):
        raise UserError(f"{name} values must lie in [{lo}, {hi}]")
    return x.astype(np.int64)


def _batches(order: np.ndarray, chunk: int) -> list[np.ndarray]:
    """Split a (length-sorted) index order into chunks of at most ``chunk`` samples."""
    return [order[k:k + chunk] for k in range(0, len(order), chunk)]


# --------------------------------------------------------------------------------------------
# the spiking network


@dataclass
class GoldenResult:
    """Fields shared by :class:`SpikingResult` and :class:`BaselineResult` (documented there)."""

    readout: np.ndarray
    logits: np.ndarray
    classes: np.ndarray
    trace: list[dict[str, np.ndarray]] | None = None
    saturation: list[dict[str, int]] | None = None
    counters: dict[str, Any] | None = None


class SpikingResult(GoldenResult):
    """Output of :func:`run_spiking` for a batch of B sequences.

    Attributes:
        readout: int64 [B, H]: r = Σ_t h_L(N_b, t) ∈ [−T, T] at each sample's last element.
        logits: int64 [B, C] from :func:`head_forward`.
        classes: int64 [B] (first index of the largest logit).
        trace: when requested, one dict per layer of int64 arrays over (b, n, t): "p"
            [B, N, T, 4H] input projection, "z" [B, N, T, 4H], "f", "i", "g", "o", "c", "s_c",
            "h" [B, N, T, H] and the membranes after each step "U_f", "U_o", "U_c" (and "U_i" /
            "U_g" when that gate spikes); positions n ≥ lengths[b] are 0.
        saturation: when requested, one dict per layer (keys :data:`SPIKING_REGISTERS` present
            in the layer): register → number of (sample, n, t, unit) updates that saturation
            clamped (active positions only); "acc" counts pre-activations outside acc_bits.
        counters: when requested, :func:`snnhw.quant.counters.spiking_counters` of this run.
    """


@dataclass
class _Tally:
    """Raw event counts of one layer over the active cells (input of the counters module)."""

    cells: int = 0
    input_nonzero: int = 0
    recurrent_nonzero: int = 0
    spikes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"cells": self.cells, "input_nonzero": self.input_nonzero,
                "recurrent_nonzero": self.recurrent_nonzero, "spikes": dict(self.spikes)}


def _layer_input_check(model: FrozenSpiking) -> None:
    """Structural checks: the non-spiking gate is the one ``nonspiking_gate`` names, and
    spike-input layers have x_shift = 0 (contract §1: no shift on add/sub/skip input)."""
    for index, layer in enumerate(model.layers):
        clips = [gate for gate in ("i", "g") if isinstance(getattr(layer, gate), ClipGate)]
        if clips != [model.nonspiking_gate]:
            raise ValueError(f"layer {index + 1}: non-spiking gates {clips}, model says {model.nonspiking_gate!r}")
        spike_input = index > 0 or model.encoding == "rate"
        if spike_input and any(layer.x_shift):
            raise ValueError(f"layer {index + 1} takes spikes but has x_shift {layer.x_shift} (must be 0)")


@_with_run_caches
def run_spiking(
    model: FrozenSpiking,
    x_q: np.ndarray | None,
    lengths: np.ndarray | None = None,
    *,
    spikes_in: np.ndarray | None = None,
    trace: bool = False,
    saturation: bool = False,
    counters: bool = False,
    chunk: int = 256,
    progress: bool = False,
) -> SpikingResult:
    """Run the integer spiking LSTM on a batch (contract §1–§3).

    Args:
        model: the frozen spiking model.
        x_q: int [B, N, D]: direct-encoded input (``encoding == "direct"``, signed ``input_bits``)
            or rate-quantized input (``"rate"``, |x_q| ≤ 2**rate_bits − 1, encoded on the fly by
            :func:`rate_encode`); None when ``spikes_in`` is given.
        lengths: int [B], sample b uses elements 0..lengths[b]−1 (default: all N).
        spikes_in: int [B, N, T, D] in {−1, 0, 1}: the hardware "spikes" input mode of a rate
            model (replaces the encoder).
        trace: record every cell's values (memory B·N·T·H per quantity: small runs only).
        saturation: count saturation clamps per layer and register.
        counters: compute the operation counters (:mod:`snnhw.quant.counters`).
        chunk: samples processed together (cache blocking; does not change results).
        progress: show a tqdm bar over the chunks.

    Order: layer by layer; within a layer, elements n in order and, for each n, time steps t in
    order (cell (n,t) needs h, c of (n−1,t) and the membranes of (n,t−1)); the batch and the
    recurrent products of all T cells of element n are vectorised.
    """
    _layer_input_check(model)
    T, width = model.T, model.input_size
    if spikes_in is not None:
        if x_q is not None:
            raise UserError("give run_spiking either x_q or spikes_in, not both")
        if model.encoding != "rate":
            raise UserError("explicit spike input needs a rate-encoded model")
        u_all = _check_int_array("spikes_in", spikes_in, 4, width, -1, 1)
        if u_all.shape[2] != T:
            raise UserError(f"spikes_in has {u_all.shape[2]} time steps, the model has T = {T}")
        batch, length = u_all.shape[:2]
    elif x_q is None:
        raise UserError("run_spiking needs x_q or spikes_in")
    elif model.encoding == "direct":
        lo, hi = arith.signed_range(model.input_bits)
        x_all = _check_int_array("x_q", x_q, 3, width, lo, hi)
        batch, length = x_all.shape[:2]
    else:
        top = (1 << model.rate_bits) - 1
        x_all = _check_int_array("x_q", x_q, 3, width, -top, top)
        batch, length = x_all.shape[:2]
    lengths = _check_lengths(lengths, batch, length)

    hidden = model.hidden_size
    readout = np.zeros((batch, hidden), dtype=np.int64)
    traces = [_new_trace(layer, batch, length, T) for layer in model.layers] if trace else None
    sat = [{name: 0 for name in _registers(layer)} for layer in model.layers] if saturation else None
    tallies = [_Tally(spikes={name: 0 for name in _spike_names(layer)}) for layer in model.layers] if counters else None

    order = np.argsort(lengths, kind="stable")
    chunks = _batches(order, max(1, chunk))
    iterator: Any = chunks
    if progress:
        from tqdm import tqdm

        iterator = tqdm(chunks, desc="golden spiking", unit="chunk")
    for idx in iterator:
        lens = lengths[idx]
        n_max = int(lens.max())
        if spikes_in is not None:
            u = u_all[idx, :n_max]
        elif model.encoding == "rate":
            u = rate_encode(model, x_all[idx, :n_max])
        else:
            u = None
        below: np.ndarray | None = None
        for index, layer in enumerate(model.layers):
            direct = index == 0 and u is None
            layer_in = x_all[idx, :n_max] if direct else (u if index == 0 else below)
            if tallies is not None:
                tallies[index].input_nonzero += int(np.count_nonzero(_mask_elements(layer_in, lens)))
            below = _run_layer(layer, layer_in, direct, lens, T,
                               traces[index] if traces is not None else None, idx,
                               sat[index] if sat is not None else None,
                               tallies[index] if tallies is not None else None)
        last = below[np.arange(len(idx)), lens - 1]
        readout[idx] = last.sum(axis=1, dtype=np.int64)

    logits = head_forward(model.head, readout)
    result = SpikingResult(readout=readout, logits=logits, classes=arith.argmax_first(logits),
                           trace=traces, saturation=sat)
    if tallies is not None:
        result.counters = spiking_counters(model, lengths, [t.as_dict() for t in tallies])
    return result


def _registers(layer: SpikingLayer) -> list[str]:
    """The :data:`SPIKING_REGISTERS` present in ``layer`` (U_i / U_g only when that gate spikes)."""
    absent = {f"U_{gate}" for gate in ("i", "g") if isinstance(getattr(layer, gate), ClipGate)}
    return [name for name in SPIKING_REGISTERS if name not in absent]


def _spike_names(layer: SpikingLayer) -> list[str]:
    """Spike outputs of ``layer`` (f, o, s_c, h; i / g when they spike)."""
    names = ["f"]
    names += [gate for gate in ("i", "g") if not isinstance(getattr(layer, gate), ClipGate)]
    return names + ["o", "s_c", "h"]


def _new_trace(layer: SpikingLayer, batch: int, length: int, T: int) -> dict[str, np.ndarray]:
    """Zeroed trace arrays of one layer."""
    hidden = layer.hidden_size
    out = {name: np.zeros((batch, length, T, 4 * hidden), dtype=np.int64) for name in ("p", "z")}
    for name in ("f", "i", "g", "o", "c", "s_c", "h"):
        out[name] = np.zeros((batch, length, T, hidden), dtype=np.int64)
    for name in initial_membranes(layer, ()):
        out["U_" + name] = np.zeros((batch, length, T, hidden), dtype=np.int64)
    return out


def _mask_elements(x: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Zero the elements n ≥ lens[b] of x [b, N, ...]."""
    active = np.arange(x.shape[1])[None, :] < lens[:, None]
    return x * active.reshape(active.shape + (1,) * (x.ndim - 2))


def _run_layer(
    layer: SpikingLayer,
    layer_in: np.ndarray,
    direct: bool,
    lens: np.ndarray,
    T: int,
    trace: dict[str, np.ndarray] | None,
    rows: np.ndarray,
    sat: dict[str, int] | None,
    tally: _Tally | None,
) -> np.ndarray:
    """One spiking layer over a chunk → h int8 [b, N, T, H].

    ``layer_in`` is the direct input x_q [b, N, D] (``direct``: projected once per element by
    :func:`input_projection`) or spikes [b, N, T, D] (:func:`spike_projection` per cell).
    """
    batch, length = layer_in.shape[0], layer_in.shape[1]
    hidden = layer.hidden_size
    h_out = np.zeros((batch, length, T, hidden), dtype=np.int8)
    h_prev = np.zeros((batch, T, hidden), dtype=np.int64)
    c_prev = np.zeros((batch, T, hidden), dtype=np.int64)
    flag = sat is not None
    for n in range(length):
        active = n < lens
        n_active = int(active.sum())
        if tally is not None:
            tally.cells += n_active * T
            tally.recurrent_nonzero += int(np.count_nonzero(h_prev[active]))
        if direct:
            p = input_projection(layer, layer_in[:, n])[:, None, :]
        else:
            p = spike_projection(layer, layer_in[:, n])
        z_all = gate_preactivation(layer, p, h_prev)
        if sat is not None:
            sat["acc"] += int(np.count_nonzero(_clamped(z_all[active], layer.acc_bits)))
        membranes = initial_membranes(layer, (batch,))
        h_new = np.empty_like(h_prev)
        c_new = np.empty_like(c_prev)
        for t in range(T):
            step = cell_from_preactivation(layer, z_all[:, t], membranes, c_prev[:, t], flag_saturation=flag)
            membranes = step.membranes
            h_new[:, t] = step.h
            c_new[:, t] = step.c
            if tally is not None:
                for name in tally.spikes:
                    values = getattr(step, name)
                    tally.spikes[name] += int(np.count_nonzero(values if n_active == batch else values[active]))
            if sat is not None and step.clamped is not None:
                for name, flags in step.clamped.items():
                    sat[name] += int(np.count_nonzero(flags[active]))
            if trace is not None:
                sel = rows[active]
                trace["p"][sel, n, t] = p[active, min(t, p.shape[1] - 1)]
                trace["z"][sel, n, t] = step.z[active]
                for name in ("f", "i", "g", "o", "c", "s_c", "h"):
                    trace[name][sel, n, t] = getattr(step, name)[active]
                for name, values in membranes.items():
                    trace["U_" + name][sel, n, t] = values[active]
        h_out[:, n] = h_new
        h_prev, c_prev = h_new, c_new
    return h_out


# --------------------------------------------------------------------------------------------
# the MAC baseline


@dataclass
class BaselineStep:
    """One element of a baseline layer (arrays [..., H], activations in units of 2^−q).

    Attributes:
        z: int64 [..., 4H] pre-activations.
        f, i, o: hard sigmoids in [0, Q]; g: hard tanh in [−Q, Q].
        c: cell state (signed ``cell_bits``); tc: hard tanh of c in [−Q, Q]; h = (o·tc) >> q.
        clamped: when requested, {"c": flags where the c register saturated}.
    """

    z: np.ndarray
    f: np.ndarray
    i: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray
    tc: np.ndarray
    h: np.ndarray
    clamped: dict[str, np.ndarray] | None = None


def _sigmoid_mult(layer: BaselineLayer, gate: str) -> int:
    """The single multiplier of a sigmoid gate (M+ must equal M−)."""
    m_pos, m_neg = layer.act_mult[gate]
    if m_pos != m_neg:
        raise ValueError(f"sigmoid gate {gate} has different multipliers {m_pos}, {m_neg}")
    return int(m_pos)


def baseline_gate_activations(layer: BaselineLayer, frac_bits: int, z: np.ndarray
                              ) -> dict[str, tuple[np.ndarray, int, int]]:
    """Each gate's activation before its clip, with the clip's bounds (contract §4), from the
    pre-activations z int64 [..., 4H] (f, i, g, o blocks): ``(value, lo, hi)`` with
    f, i, o: ``(((z·M) >> S) + Q/2, 0, Q)``; g: ``((z·M±) >> S, −Q, Q)``; Q = 2**frac_bits.
    The activation is ``arith.clip(value, lo, hi)``."""
    hidden, q_one, shift = layer.hidden_size, 1 << frac_bits, layer.act_shift
    blocks = dict(zip(("f", "i", "g", "o"), (z[..., k * hidden:(k + 1) * hidden] for k in range(4))))
    out = {a: (arith.scaled(blocks[a], _sigmoid_mult(layer, a), shift, q_one // 2), 0, q_one) for a in ("f", "i", "o")}
    g_pos, g_neg = layer.act_mult["g"]
    out["g"] = (arith.sign_scaled(blocks["g"], int(g_pos), int(g_neg), shift), -q_one, q_one)
    return out


def baseline_tanh_c(layer: BaselineLayer, frac_bits: int, c: np.ndarray) -> tuple[np.ndarray, int, int]:
    """tanh(c) before its clip, with the clip's bounds: ``((c·Mc±) >> S, −Q, Q)`` (contract §4)."""
    q_one = 1 << frac_bits
    return arith.sign_scaled(c, int(layer.c_mult[0]), int(layer.c_mult[1]), layer.act_shift), -q_one, q_one


def baseline_cell_step(
    layer: BaselineLayer,
    frac_bits: int,
    p: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    *,
    flag_saturation: bool = False,
) -> BaselineStep:
    """One element n of a baseline layer (contract §4).

    Args:
        frac_bits: q (``FrozenBaseline.frac_bits``); Q = 2**q.
        p: int64 [..., 4H] input projection (layer 1: :func:`input_projection`; layer 2:
            ``Wx·h_below``).
        h_prev, c_prev: h(n−1), c(n−1) (zeros for n = 1).

    ``z = p + Wh·h_prev + b``; ``f,i,o = clip(((z·M) >> S) + Q/2, 0, Q)``;
    ``g = clip((z·M±) >> S, −Q, Q)``; ``c = sat_CW((f·c_prev + i·g) >> q)``;
    ``tc = clip((c·Mc±) >> S, −Q, Q)``; ``h = (o·tc) >> q``.
    """
    q_one = 1 << frac_bits
    h_prev = np.asarray(h_prev, dtype=np.int64)
    z = p + _cache(layer).matmul("h", h_prev, q_one) + np.asarray(layer.bias, dtype=np.int64)
    gates = baseline_gate_activations(layer, frac_bits, z)
    f, i, g, o = (arith.clip(*gates[a]) for a in ("f", "i", "g", "o"))
    flags = None
    if flag_saturation:
        flags = {"c": _clamped((f * c_prev + i * g) >> frac_bits, layer.cell_bits)}
    c = arith.baseline_cell(f, c_prev, i, g, frac_bits, layer.cell_bits)
    tc = arith.clip(*baseline_tanh_c(layer, frac_bits, c))
    h = arith.baseline_hidden(o, tc, frac_bits)
    return BaselineStep(z=z, f=f, i=i, g=g, o=o, c=c, tc=tc, h=h, clamped=flags)


class BaselineResult(GoldenResult):
    """Output of :func:`run_baseline` for a batch of B sequences.

    Attributes:
        readout: int64 [B, H]: h_L(N_b) in units of 2^−q.
        logits: int64 [B, C]; classes: int64 [B].
        trace: when requested, one dict per layer: "p", "z" [B, N, 4H]; "f", "i", "g", "o", "c",
            "tc", "h" [B, N, H] (positions n ≥ lengths[b] are 0).
        saturation: when requested, one dict per layer {"c": clamped c updates, "acc":
            pre-activations outside acc_bits} (active positions only).
        counters: when requested, :func:`snnhw.quant.counters.baseline_counters` of this run.
    """


@_with_run_caches
def run_baseline(
    model: FrozenBaseline,
    x_q: np.ndarray,
    lengths: np.ndarray | None = None,
    *,
    trace: bool = False,
    saturation: bool = False,
    counters: bool = False,
    chunk: int = 1024,
    progress: bool = False,
) -> BaselineResult:
    """Run the integer MAC baseline on a batch (contract §4).

    Args:
        x_q: int [B, N, D] direct-encoded input (signed ``input_bits``).
        lengths: int [B] sequence lengths (default: all N).
        trace, saturation, counters, chunk, progress: as :func:`run_spiking`.
    """
    for index, layer in enumerate(model.layers):
        if index > 0 and any(layer.x_shift):
            raise ValueError(f"baseline layer {index + 1} has x_shift {layer.x_shift} (must be 0)")
    lo, hi = arith.signed_range(model.input_bits)
    x_all = _check_int_array("x_q", x_q, 3, model.input_size, lo, hi)
    batch, length = x_all.shape[:2]
    lengths = _check_lengths(lengths, batch, length)
    q = model.frac_bits
    readout = np.zeros((batch, model.hidden_size), dtype=np.int64)
    traces = None
    if trace:
        traces = []
        for layer in model.layers:
            hh = layer.hidden_size
            layer_trace = {name: np.zeros((batch, length, 4 * hh), dtype=np.int64) for name in ("p", "z")}
            for name in ("f", "i", "g", "o", "c", "tc", "h"):
                layer_trace[name] = np.zeros((batch, length, hh), dtype=np.int64)
            traces.append(layer_trace)
    sat = [{name: 0 for name in BASELINE_REGISTERS} for _ in model.layers] if saturation else None
    tallies = [{"cells": 0, "input_nonzero": 0, "recurrent_nonzero": 0} for _ in model.layers]

    order = np.argsort(lengths, kind="stable")
    chunks = _batches(order, max(1, chunk))
    iterator: Any = chunks
    if progress:
        from tqdm import tqdm

        iterator = tqdm(chunks, desc="golden baseline", unit="chunk")
    for idx in iterator:
        lens = lengths[idx]
        n_max = int(lens.max())
        below = x_all[idx, :n_max]
        for index, layer in enumerate(model.layers):
            tallies[index]["input_nonzero"] += int(np.count_nonzero(_mask_elements(below, lens)))
            if index == 0:
                p = input_projection(layer, below)
            else:
                p = _cache(layer).matmul("x", below, 1 << q)
            hh = layer.hidden_size
            h_prev = np.zeros((len(idx), hh), dtype=np.int64)
            c_prev = np.zeros((len(idx), hh), dtype=np.int64)
            h_all = np.zeros((len(idx), n_max, hh), dtype=np.int64)
            for n in range(n_max):
                active = n < lens
                tallies[index]["cells"] += int(active.sum())
                tallies[index]["recurrent_nonzero"] += int(np.count_nonzero(h_prev[active]))
                step = baseline_cell_step(layer, q, p[:, n], h_prev, c_prev, flag_saturation=sat is not None)
                if sat is not None and step.clamped is not None:
                    sat[index]["c"] += int(np.count_nonzero(step.clamped["c"][active]))
                    sat[index]["acc"] += int(np.count_nonzero(_clamped(step.z[active], layer.acc_bits)))
                if traces is not None:
                    sel = idx[active]
                    traces[index]["p"][sel, n] = p[active, n]
                    for name in ("z", "f", "i", "g", "o", "c", "tc", "h"):
                        traces[index][name][sel, n] = getattr(step, name)[active]
                h_all[:, n] = step.h
                h_prev, c_prev = step.h, step.c
            below = h_all
        readout[idx] = below[np.arange(len(idx)), lens - 1]

    logits = head_forward(model.head, readout)
    result = BaselineResult(readout=readout, logits=logits, classes=arith.argmax_first(logits),
                            trace=traces, saturation=sat)
    if counters:
        result.counters = baseline_counters(model, lengths, tallies)
    return result

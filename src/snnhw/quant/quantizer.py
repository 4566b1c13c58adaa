"""The quantizer: freeze a trained float model into the integers of ``docs/integer-contract.md``.

* :func:`quantize_spiking` — :class:`~snnhw.model.SpikingLSTM` → :class:`FrozenSpiking`.
* :func:`quantize_baseline` — :class:`~snnhw.model.HardLSTM` → :class:`FrozenBaseline` (the MAC
  baseline of the same trained source, same weight width).
* :func:`saturation_report` — golden-model runs on calibration data, saturation counts per register.

Scale rules (documented with their reasons in ``docs/frozen-format.md``, "How the quantizer
chooses the integers"):

* One scale α_a per layer and gate a (a spiking neuron only compares U with θ, so a common
  factor of W_x, W_h, b, θ and the shifts drops out). ``scale_mode="maxabs"`` (default):
  ``α_a = max|weight of gate a, in z units per input LSB| / (2^(b_w−1) − 1)``, so the largest
  weight uses the full signed range; ``"pow2"`` rounds α_a up to a power of two (coarser by up
  to 2×, but every float that is a multiple of it maps exactly). θ then gets
  ``round(θ/α_a)``, whose resolution is at least that of the weights (θ ≥ α_a is required).
* Direct input: α_x = the ``input_percentile`` (default 99.9; 100 = max-abs) of |x| over the
  valid calibration elements divided by ``2^(b_x−1) − 1`` (see :data:`DEFAULT_INPUT_PERCENTILE`).
  The first layer's projection is ``(Wx_int·x_q) >> x_shift[a]`` with ``Wx_int = round(Wx·α_x·2^x_shift/α_a)``; x_shift is the
  largest value (≤ 16) keeping Wx_int within ``weight_bits``, and the bias absorbs the mean
  flooring error ``(1 − 2^−x_shift)/2`` of the shift.
* Non-spiking g: ``g_int = clip(z_int, −θ_g_int, θ_g_int)``, i.e. g in units of 1/θ_g_int; the
  cell state and the c neuron live in that unit (``θ_c_int = round(θ_c·θ_g_int)``). Non-spiking
  i likewise with 1/θ_i_int (its centring θ_i/2 is already in the float bias).
* Leaks: :func:`snnhw.quant.leak_fit.fit_leak` (closest sum of ≤ ``leak_terms`` signed powers of two);
  each term's shift rounds to nearest (``leak_rounding``, default) or floors.
* Widths from bounds (:mod:`snnhw.quant.bounds`): acc_bits holds every worst-case z (and the
  direct-input MAC); a membrane holds its worst-case value over T steps (so membranes saturate
  only when ``membrane_headroom`` < 0 trades width for saturation); the cell register holds
  ``N_max·q_max`` (c grows by at most one gate value per element) and saturates beyond.
* Head: r (Σ_t h, or h in 2^−q) is the integer input; one scale per FC layer; the hidden
  layer's shift is the smallest that keeps the calibration activations within
  ``head_hidden_bits`` (worst case without calibration data).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from snnhw import __version__
from snnhw.errors import UserError
from snnhw.quant import arith, bounds
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
from snnhw.quant.frozen_io import validate_frozen
from snnhw.quant.leak_fit import fit_leak

GATES = ("f", "i", "g", "o")
MAX_X_SHIFT = 16
"""Largest direct-input projection shift the quantizer uses (bounds the pre-shift MAC width)."""

DEFAULT_INPUT_PERCENTILE = 99.9
"""Percentile of |x| (valid calibration elements) that sets the direct input scale α_x.

Normalised features can have rare outliers far beyond the bulk (MNIST-10k: max |x| ≈ 50, 99.9th
percentile ≈ 7); a max-abs scale then spends most input codes on them. The MAC baseline suffers
most: its layer-1 gate unit must hold w_x·α_x within the weight range while h counts in 1/Q, so a
coarse α_x coarsens the recurrent weights too (MNIST-10k, 8-bit weights, 100 test sequences:
max-abs 91 % vs 95 % with the 99.9th percentile). Inputs beyond it saturate to ±(2^(b_x−1) − 1)."""

LEAK_FLOOR = 2.0 ** -arith.LEAK_MAX_SHIFT
"""Smallest leak factor representable; a trained λ ≤ 0 (membrane forgets at once) maps to it."""


# ------------------------------------------------------------------------------- helpers

def _np(t: Any) -> np.ndarray:
    """A float64 NumPy copy of a tensor or array."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().double().numpy()
    return np.array(t, dtype=np.float64)


def _scalar(t: Any) -> float:
    """The value of a 0-dim (or one-element) threshold / leak parameter."""
    a = _np(t)
    if a.size != 1:
        raise UserError("the quantizer needs one threshold / leak per gate (0-dim parameters)")
    return float(a.reshape(-1)[0])


def _round(x: np.ndarray | float) -> np.ndarray:
    return arith.round_half_up(np.asarray(x, dtype=np.float64))


def _round_int(x: float) -> int:
    return int(_round(x))


def _qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _check_bits(name: str, bits: int, lo: int = 2, hi: int = 16) -> None:
    if not isinstance(bits, int) or not lo <= bits <= hi:
        raise UserError(f"{name} must be an integer in {lo}..{hi}, got {bits!r}")


def weight_scale(max_abs: float, bits: int, mode: str) -> float:
    """α: the float value of one weight LSB so that ``max_abs`` uses the signed ``bits`` range.

    ``mode`` "maxabs": ``max_abs / (2^(bits−1) − 1)``; "pow2": that value rounded up to a power
    of two. ``max_abs`` must be > 0.
    """
    alpha = max_abs / _qmax(bits)
    if mode == "pow2":
        alpha = 2.0 ** math.ceil(math.log2(alpha))
    elif mode != "maxabs":
        raise UserError(f"scale mode must be 'maxabs' or 'pow2', got {mode!r}")
    return alpha


def calibration_input_scale(x: np.ndarray, lengths: np.ndarray | None, bits: int, percentile: float = 100.0) -> float:
    """α_x of the direct encoding: the ``percentile`` of |x| over valid elements / (2^(bits−1) − 1).

    ``x`` float [S, N, D] (normalised features), ``lengths`` [S] (None: all valid). 100 = max-abs
    (no input ever saturates); a lower percentile clips outliers for a finer input grid.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] == 0:
        raise UserError(f"calibration data must be [samples, length, features], got {list(x.shape)}")
    if not 0 < percentile <= 100:
        raise UserError(f"input percentile must be in (0, 100], got {percentile}")
    if lengths is None:
        valid = x.reshape(-1)
    else:
        mask = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]
        valid = x[mask].reshape(-1)
    top = float(np.percentile(np.abs(valid), percentile)) if percentile < 100 else float(np.abs(valid).max())
    if not math.isfinite(top) or top <= 0:
        raise UserError("calibration data are all zero (or not finite): cannot choose an input scale")
    return top / _qmax(bits)


def calibration_subset(train: Any, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The calibration sequences: a seeded random subset of ``samples`` sequences of a training
    split (``x`` [S, N, D] normalised floats, ``lengths`` [S]; all of it when smaller), in order.

    ``snnhw quantize`` calibrates on it, and quantization-aware training takes α_x from the same
    subset, so that both choose the same input scale."""
    count = min(samples, len(train))
    index = np.sort(np.random.default_rng(seed).permutation(len(train))[:count])
    return np.asarray(train.x[index], np.float64), np.asarray(train.lengths[index], np.int64)


def quantize_input(frozen: FrozenSpiking | FrozenBaseline, x: np.ndarray) -> np.ndarray:
    """Host-side input quantization of normalised float x [..., D] for ``frozen`` (contract §1)."""
    if isinstance(frozen, FrozenSpiking) and frozen.encoding == "rate":
        return arith.quantize_rate_input(x, frozen.rate_bits)
    return arith.quantize_direct_input(x, frozen.input_scale, frozen.input_bits)


def _rows(a: int, h: int) -> slice:
    return slice(a * h, (a + 1) * h)


def _gate_z_bounds(w_x: np.ndarray, w_h: np.ndarray, bias: np.ndarray, x_shift: tuple[int, ...],
                   in_max: int, h_max: int, direct: bool) -> list[int]:
    """Worst-case |z| of each gate (f, i, g, o)."""
    h = w_h.shape[1]
    proj = bounds.projection_bound(w_x, x_shift, in_max, direct)
    rec = np.abs(w_h.astype(object)).sum(axis=1) * h_max
    rows = proj + rec + np.abs(bias.astype(object))
    return [int(max(rows[_rows(a, h)])) for a in range(4)]


def _project_layer(w_x: np.ndarray, w_h: np.ndarray, b: np.ndarray, in_unit: float, h_unit: float,
                   weight_bits: int, direct: bool, mode: str, fallback: list[float]
                   ) -> tuple[list[float], np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Per-gate scales and integer weights of one layer.

    ``in_unit``: float value of one input LSB (α_x, 1 for spikes, 1/Q for baseline h);
    ``h_unit``: same for the recurrent input. Returns (α per gate, w_x, w_h, bias, x_shift).
    """
    h = w_h.shape[1]
    qmax = _qmax(weight_bits)
    alphas: list[float] = []
    wx_i = np.zeros(w_x.shape, dtype=np.int64)
    wh_i = np.zeros(w_h.shape, dtype=np.int64)
    b_i = np.zeros(b.shape, dtype=np.int64)
    shifts = [0, 0, 0, 0]
    for a in range(4):
        rows = _rows(a, h)
        wx_u = w_x[rows] * in_unit
        wh_u = w_h[rows] * h_unit
        top = max(float(np.abs(wx_u).max(initial=0.0)), float(np.abs(wh_u).max(initial=0.0)))
        alpha = weight_scale(top, weight_bits, mode) if top > 0 else fallback[a]
        alphas.append(alpha)
        xs = 0
        if direct:
            wx_max = float(np.abs(wx_u).max(initial=0.0)) / alpha
            while wx_max > 0 and xs < MAX_X_SHIFT and _round_int(wx_max * 2 ** (xs + 1)) <= qmax:
                xs += 1
        shifts[a] = xs
        wx_i[rows] = np.clip(_round(wx_u * 2.0 ** xs / alpha), -qmax, qmax)
        wh_i[rows] = np.clip(_round(wh_u / alpha), -qmax, qmax)
        b_i[rows] = _round(b[rows] / alpha + (1.0 - 2.0 ** -xs) / 2.0)
    return alphas, wx_i, wh_i, b_i, (shifts[0], shifts[1], shifts[2], shifts[3])


def _theta_int(theta: float, alpha: float, what: str) -> int:
    value = _round_int(theta / alpha)
    if value < 1:
        raise UserError(f"{what}: threshold {theta:.3g} is below half a weight LSB ({alpha:.3g}); "
                        "use more weight bits")
    return value


def _head_scale(max_abs: float, bits: int, mode: str) -> float:
    return weight_scale(max_abs, bits, mode) if max_abs > 0 else 1.0


def quantize_head(head: Any, r_unit: float, r_max: int, weight_bits: int, hidden_bits: int, mode: str,
                  calib_r: np.ndarray | None = None) -> tuple[IntHead, dict[str, Any]]:
    """The integer head for a float :class:`~snnhw.model.heads.Head` whose input is ``r_int·r_unit``.

    ``r_max`` bounds |r_int|. With a hidden layer, ``hidden_shift`` is the smallest shift that
    keeps the largest positive hidden accumulator (of ``calib_r`` int64 [S, H] when given, else
    the worst case) within ``hidden_bits`` unsigned bits, and the hidden bias carries
    ``2^(hidden_shift−1)`` so that the shift rounds. Returns (head, scales).
    """
    qmax = _qmax(weight_bits)
    w1, b1 = _np(head.fc1.weight) * r_unit, _np(head.fc1.bias)
    a1 = _head_scale(float(np.abs(w1).max()), weight_bits, mode)
    w1_i = np.clip(_round(w1 / a1), -qmax, qmax)
    b1_i = _round(b1 / a1)
    if getattr(head, "head_hidden", 0) == 0:
        return IntHead(w_out=w1_i, b_out=b1_i), {"out": a1}
    if calib_r is not None and len(calib_r):
        top = int((np.asarray(calib_r, dtype=np.int64) @ w1_i.T + b1_i).max())
    else:
        top = int((np.abs(w1_i).sum(axis=1) * r_max + np.abs(b1_i)).max())
    limit = (1 << hidden_bits) - 1
    shift = 0
    while (max(top, 0) >> shift) > limit:
        shift += 1
    w2 = _np(head.fc2.weight) * a1 * 2.0 ** shift
    a2 = _head_scale(float(np.abs(w2).max()), weight_bits, mode)
    w2_i = np.clip(_round(w2 / a2), -qmax, qmax)
    b2_i = _round(_np(head.fc2.bias) / a2)
    # + 2^(s−1) in the hidden bias turns the floor shift into rounding (the float a is not floored)
    b1_i = b1_i + ((1 << (shift - 1)) if shift else 0)
    return (IntHead(w_out=w2_i, b_out=b2_i, w_hidden=w1_i, b_hidden=b1_i, hidden_shift=shift,
                    hidden_bits=hidden_bits), {"hidden": a1, "out": a2, "hidden_shift": shift})


def _calibration(calib_x: Any, calib_lengths: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if calib_x is None:
        return None, None
    x = _np(calib_x)
    if x.ndim != 3:
        raise UserError(f"calibration data must be [samples, length, features], got {list(x.shape)}")
    lengths = None if calib_lengths is None else np.asarray(_np(calib_lengths), dtype=np.int64)
    return x, lengths


# ------------------------------------------------------------------------------- spiking

def quantize_spiking(
    model: Any,
    *,
    weight_bits: int = 8,
    input_bits: int = 8,
    leak_terms: int = 2,
    leak_rounding: arith.LeakRounding = arith.DEFAULT_LEAK_ROUNDING,
    rate_bits: int = 8,
    calib_x: Any = None,
    calib_lengths: Any = None,
    seed: int = 0,
    input_scale: float | None = None,
    input_percentile: float = DEFAULT_INPUT_PERCENTILE,
    n_max: int | None = None,
    membrane_headroom: int = 0,
    head_hidden_bits: int = 8,
    scale_mode: str = "maxabs",
    meta: dict[str, Any] | None = None,
) -> FrozenSpiking:
    """Freeze a trained :class:`~snnhw.model.SpikingLSTM` into a :class:`FrozenSpiking`.

    Args:
        model: the float spiking model (``model.cfg.spiking``).
        weight_bits: signed width of every weight (2..16).
        input_bits: signed width of the direct-encoding input (2..16).
        leak_terms: K, shift terms per leak (1..4).
        leak_rounding: how each leak term's shift rounds, "nearest" or "floor" (every neuron).
        rate_bits: R of the rate encoder (1..16).
        calib_x, calib_lengths: normalised float calibration sequences [S, N, D] and lengths;
            give the direct input scale, N_max and the head's hidden shift.
        seed: seeds the xorshift32 generators (non-zero uint32 per feature).
        input_scale: α_x given explicitly (direct encoding; overrides calibration).
        input_percentile: percentile of |x| for α_x (100 = max-abs; default 99.9).
        n_max: longest sequence the cell register must hold without saturation (default: the
            calibration data's N).
        membrane_headroom: bits added to (or, negative, removed from) the worst-case membrane widths.
        head_hidden_bits: unsigned width of the head's hidden activation.
        scale_mode: "maxabs" or "pow2" (see the module docstring).
        meta: provenance merged into ``FrozenSpiking.meta``.

    Raises:
        UserError: invalid settings, or a model that cannot be represented (e.g. θ below half a
            weight LSB, missing calibration data for a direct-input scale).
    """
    cfg = model.cfg
    if not cfg.spiking:
        raise UserError("quantize_spiking needs a spiking model; use quantize_baseline for a hard LSTM")
    _check_bits("weight_bits", weight_bits)
    _check_bits("input_bits", input_bits)
    _check_bits("rate_bits", rate_bits, 1, 16)
    _check_bits("head_hidden_bits", head_hidden_bits, 1, 32)
    try:
        arith.validate_leak_rounding(leak_rounding)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    x_cal, len_cal = _calibration(calib_x, calib_lengths)
    T, direct = cfg.T, cfg.encoding == "direct"
    if direct:
        if input_scale is None:
            if x_cal is None:
                raise UserError("direct encoding needs calibration data (or an explicit input scale)")
            input_scale = calibration_input_scale(x_cal, len_cal, input_bits, input_percentile)
        alpha_x = float(input_scale)
    else:
        alpha_x = 2.0 ** -rate_bits
    if n_max is None:
        if x_cal is None:
            raise UserError("the cell-register width needs N_max: give calibration data or n_max")
        n_max = int(x_cal.shape[1])
    if n_max < 1:
        raise UserError(f"n_max must be ≥ 1, got {n_max}")

    layers: list[SpikingLayer] = []
    layer_scales: list[dict[str, Any]] = []
    for index, fl in enumerate(model.layers):
        th = {k: _scalar(v) for k, v in fl.theta.items()}
        lam = {k: _scalar(v) for k, v in fl.leak.items()}
        layer_direct = direct and index == 0
        in_unit = alpha_x if layer_direct else 1.0
        fallback = [th[g] / _qmax(weight_bits) for g in GATES]
        alphas, wx, wh, b, x_shift = _project_layer(_np(fl.weight_x), _np(fl.weight_h), _np(fl.bias), in_unit, 1.0,
                                                    weight_bits, layer_direct, scale_mode, fallback)
        alpha = dict(zip(GATES, alphas))
        in_max = (1 << (input_bits - 1)) if layer_direct else 1
        acc_bits = bounds.acc_bits_for(wx, wh, b, x_shift, in_max, 1, layer_direct)
        zmax = dict(zip(GATES, _gate_z_bounds(wx, wh, b, x_shift, in_max, 1, layer_direct)))
        leaks = {k: fit_leak(max(v, LEAK_FLOOR), leak_terms) for k, v in lam.items()}
        where = f"layer {index + 1}"

        def binary(gate: str) -> BinaryNeuron:
            theta = _theta_int(th[gate], alpha[gate], f"{where} gate {gate}")
            bits = bounds.membrane_bits_for(zmax[gate], leaks[gate], T, (theta,))
            return BinaryNeuron(theta, leaks[gate], max(bits + membrane_headroom, arith.signed_bits(0, theta)),
                                leak_rounding)

        def ternary(key: str, pos: float, neg: float, unit: float, in_bound: int) -> TernaryNeuron:
            tp = _theta_int(pos * unit, 1.0, f"{where} neuron {key}")
            tn = _theta_int(neg * unit, 1.0, f"{where} neuron {key}")
            sp = _round_int(pos * unit / (2 * T)) if cfg.shift else 0
            sn = _round_int(neg * unit / (2 * T)) if cfg.shift else 0
            bits = bounds.membrane_bits_for(in_bound + max(sp, sn), leaks[key], T, (tp, tn))
            floor_bits = arith.signed_bits(-max(tp, tn), max(tp, tn, sp, sn))
            return TernaryNeuron(tp, tn, sp, sn, leaks[key], max(bits + membrane_headroom, floor_bits), leak_rounding)

        f, o = binary("f"), binary("o")
        if cfg.nonspiking_gate == "g":
            i: BinaryNeuron | ClipGate = binary("i")
            q_max = _theta_int(th["g"], alpha["g"], f"{where} gate g")
            g: TernaryNeuron | ClipGate = ClipGate(-q_max, q_max)
        else:
            q_max = _theta_int(th["i"], alpha["i"], f"{where} gate i")
            i = ClipGate(0, q_max)
            g = ternary("g", th["g"], th["g_neg"], 1.0 / alpha["g"], zmax["g"])
        cell_bound = bounds.cell_bound(n_max, q_max)
        cell_bits = arith.signed_bits(-cell_bound, cell_bound)
        c = ternary("c", th["c"], th["c_neg"], float(q_max), 1 << (cell_bits - 1))
        layers.append(SpikingLayer(w_x=wx, w_h=wh, bias=b, x_shift=x_shift, f=f, i=i, g=g, o=o, c=c,
                                   cell_bits=cell_bits, acc_bits=acc_bits))
        mac = bounds.direct_mac_bound(wx, input_bits) if layer_direct else 0
        layer_scales.append({
            "alpha": alpha, "x_shift": list(x_shift), "cell_unit": 1.0 / q_max,
            "direct_mac_bits": arith.signed_bits(-mac, mac) if layer_direct else None,
            "theta_float": th, "leak_float": lam,
            "leak_fitted": {k: arith.leak_value(v) for k, v in leaks.items()},
        })

    rng = np.random.default_rng(seed)
    seeds = rng.integers(1, 1 << 32, size=cfg.input_size, dtype=np.int64)
    r_unit = 1.0 / T  # r_int = Σ_t h, the float readout is the mean over t
    head, head_scales = quantize_head(model.head, r_unit, T, weight_bits, head_hidden_bits, scale_mode)
    settings = dict(weight_bits=weight_bits, input_bits=input_bits, leak_terms=leak_terms,
                    leak_rounding=leak_rounding, rate_bits=rate_bits,
                         seed=seed, input_percentile=input_percentile, n_max=n_max,
                         membrane_headroom=membrane_headroom, head_hidden_bits=head_hidden_bits,
                         scale_mode=scale_mode, calibration_samples=0 if x_cal is None else int(x_cal.shape[0]))
    frozen = FrozenSpiking(
        T=T, encoding=cfg.encoding, nonspiking_gate=cfg.nonspiking_gate, weight_bits=weight_bits,
        input_bits=input_bits, input_scale=float(alpha_x), rate_bits=rate_bits, lfsr_seeds=seeds,
        layers=layers, head=head,
        scales={"input": float(alpha_x), "layers": layer_scales, "head": head_scales},
        meta={"model_config": cfg.to_dict(), "snnhw_version": __version__, "quantizer": settings, **(meta or {})},
    )
    if head.w_hidden is not None and x_cal is not None:
        from snnhw.quant.golden import run_spiking

        x_q = quantize_input(frozen, x_cal)
        readout = run_spiking(frozen, x_q, len_cal).readout
        frozen.head, frozen.scales["head"] = quantize_head(model.head, r_unit, T, weight_bits, head_hidden_bits,
                                                           scale_mode, calib_r=readout)
    validate_frozen(frozen)
    return frozen


def snap_spiking(
    model: Any,
    *,
    input_scale: float | None,
    weight_bits: int = 8,
    leak_terms: int = 2,
    scale_mode: str = "maxabs",
) -> dict[str, Any]:
    """The float values of the integers :func:`quantize_spiking` would give ``model``.

    For quantization-aware training (:mod:`snnhw.train.qat`): every weight, bias, threshold θ
    and leak λ of the LSTM layers, and the weights of a head without a hidden layer, replaced
    by the float its integer stands for (``integer × scale``, with the same per-gate scales
    α_a, input shifts, threshold rounding and leak fit as :func:`quantize_spiking`; the bias
    less the flooring offset of the input shift). A model holding these values quantizes to
    the same weights, thresholds and leaks, and snaps to itself. Not snapped: the θ/(2T) shifts
    (the integer model rounds them from the snapped θ), and a hidden head layer (its shift needs
    calibration data).

    Args:
        model: the float spiking model (``model.cfg.spiking``).
        input_scale: α_x of the direct encoding (float value of one input LSB); ``None`` for
            rate encoding.
        weight_bits, leak_terms, scale_mode: as for :func:`quantize_spiking`.

    Returns:
        ``{state_dict key: float64 array}`` of the snapped entries.

    Raises:
        UserError: settings out of range, or a threshold below half a weight LSB.
    """
    cfg = model.cfg
    if not cfg.spiking:
        raise UserError("snap_spiking needs a spiking model")
    _check_bits("weight_bits", weight_bits)
    direct = cfg.encoding == "direct"
    if direct and not (input_scale is not None and input_scale > 0):
        raise UserError("direct encoding needs the input scale α_x to snap the first layer")
    out: dict[str, Any] = {}
    for index, fl in enumerate(model.layers):
        key = f"layers.{index}."
        th = {k: _scalar(v) for k, v in fl.theta.items()}
        in_unit = float(input_scale) if direct and index == 0 else 1.0
        fallback = [th[g] / _qmax(weight_bits) for g in GATES]
        alphas, wx, wh, b, x_shift = _project_layer(_np(fl.weight_x), _np(fl.weight_h), _np(fl.bias), in_unit, 1.0,
                                                    weight_bits, direct and index == 0, scale_mode, fallback)
        h = wh.shape[1]
        w_x = np.zeros(wx.shape)
        w_h = np.zeros(wh.shape)
        bias = np.zeros(b.shape)
        for a, alpha in enumerate(alphas):
            rows = _rows(a, h)
            w_x[rows] = wx[rows] * alpha / (in_unit * 2.0 ** x_shift[a])
            w_h[rows] = wh[rows] * alpha
            bias[rows] = (b[rows] - (1.0 - 2.0 ** -x_shift[a]) / 2.0) * alpha
        out.update({key + "weight_x": w_x, key + "weight_h": w_h, key + "bias": bias})
        alpha = dict(zip(GATES, alphas))
        where = f"layer {index + 1}"
        clip = "g" if cfg.nonspiking_gate == "g" else "i"
        for gate in ("f", "i", "g", "o"):
            if gate == "g" and clip == "i":
                for k in ("g", "g_neg"):
                    out[key + f"theta.{k}"] = np.float64(_theta_int(th[k] / alpha["g"], 1.0, f"{where} neuron {k}")
                                                         * alpha["g"])
            else:
                out[key + f"theta.{gate}"] = np.float64(_theta_int(th[gate], alpha[gate], f"{where} gate {gate}")
                                                        * alpha[gate])
        q_max = _round_int(float(out[key + f"theta.{clip}"]) / alpha[clip])
        for k in ("c", "c_neg"):
            out[key + f"theta.{k}"] = np.float64(_theta_int(th[k] * q_max, 1.0, f"{where} neuron {k}") / q_max)
        for k, v in fl.leak.items():
            out[key + f"leak.{k}"] = np.float64(arith.leak_value(fit_leak(max(_scalar(v), LEAK_FLOOR), leak_terms)))
    head = model.head
    if getattr(head, "head_hidden", 0) == 0:
        r_unit = 1.0 / cfg.T
        int_head, scales = quantize_head(head, r_unit, cfg.T, weight_bits, 8, scale_mode)
        out["head.fc1.weight"] = int_head.w_out * scales["out"] / r_unit
        out["head.fc1.bias"] = int_head.b_out * scales["out"]
    return out


# ------------------------------------------------------------------------------ baseline

MAX_ACT_SHIFT = 40
"""Largest activation shift S of the baseline (the products z·M stay within int64)."""

BASELINE_MIN_SHIFT = 16
"""Smallest automatic activation shift S."""


def _auto_act_shift(min_slope: float, max_slope: float, act_bits: int, operand_bits: int) -> int:
    """The baseline's S when not given.

    The smallest S ≥ 16 whose smallest multiplier ``round(2^S·slope)`` has at least
    ``act_bits + 2`` bits (its relative rounding error then stays below a quarter of an
    activation LSB), as long as the largest multiplier times an ``operand_bits`` operand
    (max of acc_bits and cell_bits) still fits int64.
    """
    def fits(shift: int) -> bool:
        return operand_bits + int(2.0 ** shift * max_slope + 1).bit_length() <= 63

    shift = BASELINE_MIN_SHIFT
    while shift < MAX_ACT_SHIFT and 2.0 ** shift * min_slope < 2.0 ** (act_bits + 1) and fits(shift + 1):
        shift += 1
    return shift


def quantize_baseline(
    model: Any,
    *,
    weight_bits: int = 8,
    act_bits: int = 8,
    input_bits: int = 8,
    act_shift: int | None = None,
    calib_x: Any = None,
    calib_lengths: Any = None,
    input_scale: float | None = None,
    input_percentile: float = DEFAULT_INPUT_PERCENTILE,
    n_max: int | None = None,
    head_hidden_bits: int = 8,
    scale_mode: str = "maxabs",
    meta: dict[str, Any] | None = None,
) -> FrozenBaseline:
    """Freeze a trained :class:`~snnhw.model.HardLSTM` into the MAC baseline (contract §4).

    Activations are integers in units of 2^−q, q = act_bits − 1, Q = 2^q. Per layer and gate a
    scale α_a (as in :func:`quantize_spiking`, with h in units of 1/Q as the recurrent input);
    activation multipliers ``M_a = round(2^S·α_a·Q/V_a)`` (f, i, o; g with V_g for z ≥ 0 and
    V_g_neg for z < 0) and ``M_c± = round(2^S/V_c±)`` (c is already in units of 2^−q), S =
    ``act_shift`` (None: :func:`_auto_act_shift`). The cell register holds ``N_max·(Q + 1)`` (|i·g| ≤ Q² adds at most Q + 1
    after the floor shift) and saturates beyond.
    """
    cfg = model.cfg
    if cfg.spiking:
        raise UserError("quantize_baseline needs a hard (non-spiking) LSTM")
    _check_bits("weight_bits", weight_bits)
    _check_bits("act_bits", act_bits)
    _check_bits("input_bits", input_bits)
    if act_shift is not None and (not isinstance(act_shift, int) or not 1 <= act_shift <= MAX_ACT_SHIFT):
        raise UserError(f"act_shift must be an integer in 1..{MAX_ACT_SHIFT}, got {act_shift!r}")
    x_cal, len_cal = _calibration(calib_x, calib_lengths)
    if input_scale is None:
        if x_cal is None:
            raise UserError("the baseline's direct input needs calibration data (or an explicit input scale)")
        input_scale = calibration_input_scale(x_cal, len_cal, input_bits, input_percentile)
    if n_max is None:
        if x_cal is None:
            raise UserError("the cell-register width needs N_max: give calibration data or n_max")
        n_max = int(x_cal.shape[1])
    q = act_bits - 1
    Q = 1 << q
    layers: list[BaselineLayer] = []
    layer_scales: list[dict[str, Any]] = []
    for index, fl in enumerate(model.layers):
        V = {k: _scalar(v) for k, v in fl.V.items()}
        direct = index == 0
        in_unit = float(input_scale) if direct else 1.0 / Q
        fallback = [V[g] / _qmax(weight_bits) for g in GATES]
        alphas, wx, wh, b, x_shift = _project_layer(_np(fl.weight_x), _np(fl.weight_h), _np(fl.bias), in_unit,
                                                    1.0 / Q, weight_bits, direct, scale_mode, fallback)
        alpha = dict(zip(GATES, alphas))
        in_max = (1 << (input_bits - 1)) if direct else Q
        acc_bits = bounds.acc_bits_for(wx, wh, b, x_shift, in_max, Q, direct)

        # real slopes of the activations in output LSBs per z LSB: M = round(2^S · slope)
        slopes = {g: alpha[g] * Q / V[g] for g in ("f", "i", "g", "o")}
        slopes["g_neg"] = alpha["g"] * Q / V["g_neg"]
        cell = n_max * (Q + 1)
        cell_bits = arith.signed_bits(-cell, cell)
        S = act_shift if act_shift is not None else _auto_act_shift(
            min(slopes.values()), max(*slopes.values(), 1.0 / V["c"], 1.0 / V["c_neg"]), act_bits,
            max(acc_bits, cell_bits))

        def mult(slope: float) -> int:
            return _round_int(2.0 ** S * slope)

        act_mult = {g: (mult(slopes[g]), mult(slopes[g])) for g in GATES}
        act_mult["g"] = (mult(slopes["g"]), mult(slopes["g_neg"]))
        c_mult = (mult(1.0 / V["c"]), mult(1.0 / V["c_neg"]))
        layers.append(BaselineLayer(w_x=wx, w_h=wh, bias=b, x_shift=x_shift, act_mult=act_mult, c_mult=c_mult,
                                    act_shift=S, cell_bits=cell_bits, acc_bits=acc_bits))
        layer_scales.append({"alpha": alpha, "x_shift": list(x_shift), "V_float": V, "act_shift": S})
    head, head_scales = quantize_head(model.head, 1.0 / Q, Q, weight_bits, head_hidden_bits, scale_mode)
    settings = dict(weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits, act_shift=act_shift,
                         input_percentile=input_percentile, n_max=n_max, head_hidden_bits=head_hidden_bits,
                         scale_mode=scale_mode, calibration_samples=0 if x_cal is None else int(x_cal.shape[0]))
    frozen = FrozenBaseline(
        weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits, input_scale=float(input_scale),
        layers=layers, head=head, scales={"input": float(input_scale), "layers": layer_scales, "head": head_scales},
        meta={"model_config": cfg.to_dict(), "snnhw_version": __version__, "quantizer": settings, **(meta or {})},
    )
    if head.w_hidden is not None and x_cal is not None:
        from snnhw.quant.golden import run_baseline

        readout = run_baseline(frozen, quantize_input(frozen, x_cal), len_cal).readout
        frozen.head, frozen.scales["head"] = quantize_head(model.head, 1.0 / Q, Q, weight_bits, head_hidden_bits,
                                                           scale_mode, calib_r=readout)
    validate_frozen(frozen)
    return frozen


# ---------------------------------------------------------------------------- saturation

def saturation_report(frozen: FrozenSpiking | FrozenBaseline, x: np.ndarray, lengths: np.ndarray | None = None,
                      *, chunk: int = 256, progress: bool = False) -> dict[str, Any]:
    """Run the golden model on float data x [S, N, D] and count saturation per layer and register.

    Returns ``{"samples", "layers": [{register: {"count", "updates", "fraction"}}], "total"}``
    where ``updates`` is the number of register updates on valid positions (S·N_b·T·H per
    layer for the spiking model, S·N_b·H for the baseline) and ``count`` how many of them were
    clamped. Also reports ``classes`` (int list) for accuracy bookkeeping.
    """
    from snnhw.quant.golden import run_baseline, run_spiking

    x_q = quantize_input(frozen, x)
    lens = np.full(x.shape[0], x.shape[1], dtype=np.int64) if lengths is None else np.asarray(lengths, np.int64)
    if isinstance(frozen, FrozenSpiking):
        res = run_spiking(frozen, x_q, lens, saturation=True, chunk=chunk, progress=progress)
        per_unit = int(lens.sum()) * frozen.T
    else:
        res = run_baseline(frozen, x_q, lens, saturation=True, chunk=chunk, progress=progress)
        per_unit = int(lens.sum())
    out_layers = []
    total = 0
    for layer, counts in zip(frozen.layers, res.saturation or []):
        updates = per_unit * layer.hidden_size
        out_layers.append({name: {"count": int(n), "updates": updates, "fraction": n / updates if updates else 0.0}
                           for name, n in counts.items()})
        total += sum(int(n) for n in counts.values())
    return {"samples": int(x.shape[0]), "layers": out_layers, "total": total, "classes": res.classes.tolist()}


__all__ = ["quantize_spiking", "quantize_baseline", "quantize_head", "saturation_report", "quantize_input",
           "calibration_input_scale", "weight_scale", "snap_spiking", "calibration_subset", "MAX_X_SHIFT"]

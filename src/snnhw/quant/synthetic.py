"""Random but valid frozen models and inputs, for tests of the golden model and the hardware.

The models have realistic magnitudes: thresholds are set from the spread of the
pre-activations so that every spiking gate fires at an intermediate rate (neither silent nor
saturated at 1), the bias shifts of the conversion (θ/2 centring, θ/(2T) shift) are applied
as the converter does, and the widths are derived from the weight bounds as the quantizer
derives them (accumulators cannot overflow; membranes and c are declared and saturate).
``saturate=True`` makes narrow membrane / cell registers and large weights so that saturation
really happens.

Everything is a deterministic function of ``seed`` (NumPy ``default_rng``).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np

from snnhw.quant import arith
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

LEAK_PRESETS: dict[str, arith.LeakTerms] = {
    "if": ((1, 0),),
    "lif": ((1, 0), (-1, 3)),
    "gt1": ((1, 0), (1, 3)),
}
"""Named leaks: IF (λ = 1), LIF λ = 7/8, and λ = 1.125 (> 1)."""

LeakSpec = str | Sequence[Sequence[int]]


def leak_terms(leak: LeakSpec) -> arith.LeakTerms:
    """A leak given by name (:data:`LEAK_PRESETS`) or as explicit ``((sign, shift), ...)`` terms."""
    if isinstance(leak, str):
        if leak not in LEAK_PRESETS:
            raise ValueError(f"unknown leak {leak!r}; use one of {sorted(LEAK_PRESETS)} or shift terms")
        return LEAK_PRESETS[leak]
    return arith.validate_leak_terms(leak)


def _weights(rng: np.random.Generator, shape: tuple[int, ...], bits: int, spread: float) -> np.ndarray:
    """Signed ``bits``-bit weights, normal with sd = max(spread·w_max, 0.8) (so that 2-3 bit
    weights are not mostly zero), rounded and clipped to ±w_max."""
    w_max = (1 << (bits - 1)) - 1
    w = arith.round_half_up(rng.normal(0.0, max(spread * w_max, 0.8), size=shape))
    return arith.clip(w, -w_max, w_max).astype(np.int64)


def _rms(w: np.ndarray) -> float:
    """Root mean square of an integer array (a typical row norm per input)."""
    return float(np.sqrt(np.mean(np.asarray(w, dtype=np.float64) ** 2))) if w.size else 0.0


def _ceil_shift(value: int, shift: int) -> int:
    """``ceil(value / 2**shift)`` for value ≥ 0: bound of a floor-shifted sum of either sign."""
    return -((-value) >> shift)


def _bits_of(value: int) -> int:
    """Unsigned bits needed to hold ``value`` ≥ 0."""
    return max(1, int(value).bit_length())


def _input_bound(w_x: np.ndarray, x_max: int, x_shift: Sequence[int], hidden: int) -> np.ndarray:
    """Per-row bound of the input projection ``|(Wx·x) >> shift|`` for |x| ≤ x_max, int64 [4H]."""
    row = np.abs(w_x).sum(axis=1) * x_max
    shifts = np.repeat(np.asarray(x_shift, dtype=np.int64), hidden)
    return np.array([_ceil_shift(int(v), int(s)) for v, s in zip(row, shifts)], dtype=np.int64)


def _acc_bits(input_bound: np.ndarray, w_h: np.ndarray, h_max: int, bias: np.ndarray) -> int:
    """Signed width holding every pre-activation ``z = P + Wh·h + b`` (contract §5)."""
    bound = int((input_bound + np.abs(w_h).sum(axis=1) * h_max + np.abs(bias)).max())
    return arith.signed_bits(-bound, bound)


def _head(rng: np.random.Generator, hidden: int, num_classes: int, head_hidden: int, weight_bits: int,
          r_max: int) -> IntHead:
    """A random integer FC head for readouts |r| ≤ r_max (optionally with a ReLU hidden layer)."""
    hidden_bits = 8
    if head_hidden:
        w_hidden = _weights(rng, (head_hidden, hidden), weight_bits, 0.3)
        spread = _rms(w_hidden) * r_max * math.sqrt(hidden) * 0.5
        shift = max(0, round(math.log2(max(spread, 1.0) / (1 << (hidden_bits - 2)))))
        b_hidden = arith.round_half_up(rng.normal(0.0, spread / 4, size=head_hidden))
        w_out = _weights(rng, (num_classes, head_hidden), weight_bits, 0.3)
        b_out = arith.round_half_up(rng.normal(0.0, _rms(w_out) * (1 << (hidden_bits - 2)) / 4, size=num_classes))
        return IntHead(w_out=w_out, b_out=b_out, w_hidden=w_hidden, b_hidden=b_hidden, hidden_shift=shift,
                       hidden_bits=hidden_bits)
    w_out = _weights(rng, (num_classes, hidden), weight_bits, 0.3)
    b_out = arith.round_half_up(rng.normal(0.0, _rms(w_out) * r_max / 4, size=num_classes))
    return IntHead(w_out=w_out, b_out=b_out)


def random_frozen_spiking(
    seed: int,
    *,
    input_size: int,
    hidden_size: int,
    T: int,
    num_layers: int = 1,
    num_classes: int = 4,
    nonspiking_gate: Literal["i", "g"] = "g",
    encoding: Literal["direct", "rate"] = "direct",
    weight_bits: int = 8,
    input_bits: int = 8,
    rate_bits: int = 8,
    leak: LeakSpec = "if",
    leak_rounding: arith.LeakRounding = arith.DEFAULT_LEAK_ROUNDING,
    shifts: bool = True,
    head_hidden: int = 0,
    saturate: bool = False,
) -> FrozenSpiking:
    """A valid random integer spiking LSTM whose gates spike at intermediate rates.

    Args:
        seed: RNG seed (the model is a deterministic function of all arguments).
        input_size, hidden_size: D and H (every layer has H units).
        T: time steps per element.
        num_layers: 1 or 2.
        num_classes: C of the FC head.
        nonspiking_gate: "g" (spiking i, clip g; the default) or "i" (clip i, ternary g).
        encoding: "direct" (layer-1 MAC, x_q signed ``input_bits``) or "rate" (xorshift32
            encoder, x_q signed ``rate_bits`` + 1).
        weight_bits: signed width of every weight (2..16).
        leak: "if" (λ = 1), "lif" (λ = 7/8), "gt1" (λ = 1.125) or explicit shift terms; used by
            every spiking neuron.
        leak_rounding: "nearest" or "floor", how every leak term's shift rounds.
        shifts: apply the paper's θ/(2T) shifts (sigmoid gates: in the bias; ternary neurons: σ±).
        head_hidden: units of a hidden FC layer in the head (0: a single FC).
        saturate: narrow membrane and cell registers and large weights, so saturation occurs.

    Gate thresholds θ are set from the RMS pre-activation: a recurrent term of about a quarter
    of H active inputs, and (direct) an input projection brought to the same spread by x_shift.
    """
    if num_layers not in (1, 2):
        raise ValueError("num_layers must be 1 or 2")
    if not 2 <= weight_bits <= 16:
        raise ValueError("weight_bits must lie in 2..16")
    rng = np.random.default_rng(seed)
    terms = leak_terms(leak)
    arith.validate_leak_rounding(leak_rounding)
    spread = 0.6 if saturate else 0.3
    x_max = (1 << (input_bits - 1)) if encoding == "direct" else (1 << rate_bits) - 1
    layers: list[SpikingLayer] = []
    d_in = input_size
    for index in range(num_layers):
        w_x = _weights(rng, (4 * hidden_size, d_in), weight_bits, spread)
        w_h = _weights(rng, (4 * hidden_size, hidden_size), weight_bits, spread)
        rec_spread = _rms(w_h) * math.sqrt(hidden_size * 0.25)
        theta_base = max(2, round(rec_spread))
        direct = index == 0 and encoding == "direct"
        if direct:
            raw_spread = _rms(w_x) * (x_max / 4) * math.sqrt(d_in)
            shift = max(0, round(math.log2(max(raw_spread, 1.0) / theta_base)))
            x_shift = (shift, shift, shift, shift)
            in_max = 1 << (input_bits - 1)
        else:
            x_shift = (0, 0, 0, 0)
            in_max = 1
        thetas = {gate: max(2, round(theta_base * rng.uniform(0.7, 1.3))) for gate in ("f", "i", "g", "o")}
        bias = np.zeros(4 * hidden_size, dtype=np.int64)
        for k, gate in enumerate(("f", "i", "g", "o")):
            theta = thetas[gate]
            block = arith.round_half_up(rng.normal(0.0, theta / 4, size=hidden_size))
            sigmoid_spiking = gate in ("f", "o") or (gate == "i" and nonspiking_gate == "g")
            if sigmoid_spiking:
                block += theta // 2 + (theta // (2 * T) if shifts else 0)
            elif gate == "i":
                block += theta // 2
            bias[k * hidden_size:(k + 1) * hidden_size] = block
        unit = thetas[nonspiking_gate]
        if saturate:
            def mem_bits(theta: int) -> int:
                return arith.signed_bits(-2 * theta, 2 * theta)
            cell_bits = arith.signed_bits(-2 * unit, 2 * unit)
        else:
            acc_bits_guess = _acc_bits(_input_bound(w_x, in_max, x_shift, hidden_size), w_h, 1, bias)

            def mem_bits(theta: int) -> int:
                return acc_bits_guess + _bits_of(T) + 2
            cell_bits = _bits_of(unit) + 9

        def binary(gate: str) -> BinaryNeuron:
            return BinaryNeuron(theta=thetas[gate], leak=terms, membrane_bits=mem_bits(thetas[gate]),
                                leak_rounding=leak_rounding)

        def ternary(theta: int, bits: int) -> TernaryNeuron:
            sigma = theta // (2 * T) if shifts else 0
            return TernaryNeuron(theta_pos=theta, theta_neg=theta, shift_pos=sigma, shift_neg=sigma, leak=terms,
                                 membrane_bits=bits, leak_rounding=leak_rounding)

        if nonspiking_gate == "g":
            gate_i: BinaryNeuron | ClipGate = binary("i")
            gate_g: TernaryNeuron | ClipGate = ClipGate(lo=-unit, hi=unit)
        else:
            gate_i = ClipGate(lo=0, hi=unit)
            gate_g = ternary(thetas["g"], mem_bits(thetas["g"]))
        theta_c = max(2, round(unit * rng.uniform(0.8, 1.2)))
        c_bits = arith.signed_bits(-2 * theta_c, 2 * theta_c) if saturate else cell_bits + _bits_of(T) + 2
        acc_bits = _acc_bits(_input_bound(w_x, in_max, x_shift, hidden_size), w_h, 1, bias)
        layers.append(SpikingLayer(
            w_x=w_x, w_h=w_h, bias=bias, x_shift=x_shift,
            f=binary("f"), i=gate_i, g=gate_g, o=binary("o"), c=ternary(theta_c, c_bits),
            cell_bits=cell_bits, acc_bits=acc_bits,
        ))
        d_in = hidden_size
    head = _head(rng, hidden_size, num_classes, head_hidden, weight_bits, T)
    seeds = rng.integers(1, 1 << 32, size=input_size, dtype=np.int64)
    return FrozenSpiking(
        T=T, encoding=encoding, nonspiking_gate=nonspiking_gate, weight_bits=weight_bits,
        input_bits=input_bits, input_scale=2.0 ** (3 - input_bits), rate_bits=rate_bits,
        lfsr_seeds=seeds, layers=layers, head=head,
        meta={"synthetic": {"seed": seed, "leak": [list(t) for t in terms], "leak_rounding": leak_rounding,
                            "saturate": saturate,
                            "shifts": shifts}},
    )


def random_frozen_baseline(
    seed: int,
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    num_classes: int = 4,
    weight_bits: int = 8,
    input_bits: int = 8,
    act_bits: int = 8,
    act_shift: int = 16,
    head_hidden: int = 0,
    saturate: bool = False,
) -> FrozenBaseline:
    """A valid random integer MAC baseline (hard LSTM) with activations inside their clip ranges.

    Args:
        act_bits: signed width of the activations (q = act_bits − 1, Q = 2**q).
        act_shift: S, the floor shift after each activation multiply.
        saturate: a c register of only ±Q range and large weights, so c saturates.
        Other arguments as :func:`random_frozen_spiking`.

    Each gate's "one" V_a (the z that maps to a full-scale activation) is set from the RMS
    pre-activation, and its multiplier is ``M = round(Q·2**S / V_a)``; tanh gates get slightly
    different M+ and M−.
    """
    if num_layers not in (1, 2):
        raise ValueError("num_layers must be 1 or 2")
    rng = np.random.default_rng(seed)
    q = act_bits - 1
    q_one = 1 << q
    spread = 0.6 if saturate else 0.3
    layers: list[BaselineLayer] = []
    d_in = input_size
    for index in range(num_layers):
        w_x = _weights(rng, (4 * hidden_size, d_in), weight_bits, spread)
        w_h = _weights(rng, (4 * hidden_size, hidden_size), weight_bits, spread)
        v_base = max(4.0, _rms(w_h) * (q_one / 3) * math.sqrt(hidden_size))
        if index == 0:
            x_max = 1 << (input_bits - 1)
            raw_spread = _rms(w_x) * (x_max / 4) * math.sqrt(d_in)
            shift = max(0, round(math.log2(max(raw_spread, 1.0) / v_base)))
            x_shift = (shift, shift, shift, shift)
            in_max = x_max
        else:
            x_shift = (0, 0, 0, 0)
            in_max = q_one
        v_gate = {gate: v_base * rng.uniform(0.7, 1.3) for gate in ("f", "i", "g", "o")}
        mult = {gate: max(1, round(q_one * (1 << act_shift) / v_gate[gate])) for gate in v_gate}
        act_mult = {gate: (mult[gate], mult[gate]) for gate in ("f", "i", "o")}
        act_mult["g"] = (mult["g"], max(1, round(mult["g"] * rng.uniform(0.85, 1.15))))
        c_scale = 1 << act_shift
        c_mult = (max(1, round(c_scale * rng.uniform(0.8, 1.2))), max(1, round(c_scale * rng.uniform(0.8, 1.2))))
        bias = arith.round_half_up(rng.normal(0.0, v_base / 4, size=4 * hidden_size))
        cell_bits = arith.signed_bits(-q_one, q_one) if saturate else arith.signed_bits(-256 * q_one, 256 * q_one)
        acc_bits = _acc_bits(_input_bound(w_x, in_max, x_shift, hidden_size), w_h, q_one, bias)
        layers.append(BaselineLayer(
            w_x=w_x, w_h=w_h, bias=bias, x_shift=x_shift, act_mult=act_mult, c_mult=c_mult,
            act_shift=act_shift, cell_bits=cell_bits, acc_bits=acc_bits,
        ))
        d_in = hidden_size
    head = _head(rng, hidden_size, num_classes, head_hidden, weight_bits, q_one)
    return FrozenBaseline(
        weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits,
        input_scale=2.0 ** (3 - input_bits), layers=layers, head=head,
        meta={"synthetic": {"seed": seed, "saturate": saturate}},
    )


def random_inputs(
    model: FrozenSpiking | FrozenBaseline,
    seed: int,
    batch: int,
    n_max: int,
    vary_lengths: bool = True,
    *,
    spikes: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Random in-range inputs for ``model`` and their lengths.

    Args:
        model: the frozen model the inputs are for.
        seed: RNG seed.
        batch: B sequences.
        n_max: N, the padded length (sample 0 always has length N).
        vary_lengths: draw lengths uniformly in 1..N (else all N).
        spikes: (rate models) return explicit spike input ``spikes_in`` [B, N, T, D] in
            {−1, 0, 1} (about 40 % nonzero) instead of x_q.

    Returns ``(x, lengths)``: x int64 [B, N, D] — direct: normal with sd = ¼ of the signed
    ``input_bits`` range, clipped; rate: uniform in ±(2**rate_bits − 1) — or the spikes; zero
    beyond each length; lengths int64 [B].
    """
    rng = np.random.default_rng(seed)
    width = model.input_size
    lengths = rng.integers(1, n_max + 1, size=batch) if vary_lengths else np.full(batch, n_max)
    lengths = lengths.astype(np.int64)
    if batch:
        lengths[0] = n_max
    if spikes:
        if not isinstance(model, FrozenSpiking) or model.encoding != "rate":
            raise ValueError("explicit spike input needs a rate-encoded spiking model")
        values = rng.choice(np.array([-1, 0, 1]), size=(batch, n_max, model.T, width), p=[0.2, 0.6, 0.2])
    elif isinstance(model, FrozenSpiking) and model.encoding == "rate":
        top = (1 << model.rate_bits) - 1
        values = rng.integers(-top, top + 1, size=(batch, n_max, width))
    else:
        lo, hi = arith.signed_range(model.input_bits)
        values = arith.clip(arith.round_half_up(rng.normal(0.0, (hi + 1) / 4, size=(batch, n_max, width))), lo, hi)
    active = np.arange(n_max)[None, :] < lengths[:, None]
    values = values * active.reshape(active.shape + (1,) * (values.ndim - 2))
    return values.astype(np.int64), lengths


def permuted_weights(model: FrozenSpiking | FrozenBaseline, seed: int) -> FrozenSpiking | FrozenBaseline:
    """``model`` with each weight row's entries (``w_x``, ``w_h`` of every layer) and each gate's
    H biases permuted (seeded): other weights and biases with the same per-row and per-gate value
    ranges, so every width derived from them, hence the generated core's structure apart from its
    memory contents, stays the same (one compiled simulator serves both; ``snnhw fuzz
    --models-per-config``). Everything else (thresholds, leaks, shifts, head) is kept.
    """
    import dataclasses

    rng = np.random.default_rng(seed)

    def rows(w: np.ndarray) -> np.ndarray:
        return np.stack([rng.permutation(row) for row in w])

    def gates(b: np.ndarray) -> np.ndarray:
        return np.concatenate([rng.permutation(part) for part in np.split(b, 4)])

    layers = [dataclasses.replace(layer, w_x=rows(layer.w_x), w_h=rows(layer.w_h), bias=gates(layer.bias))
              for layer in model.layers]
    return dataclasses.replace(model, layers=layers)


def varied_constants(model: FrozenSpiking, seed: int) -> FrozenSpiking:
    """``model`` with every neuron constant the spiking core reads from its constant memories
    (θ, θ±, σ± and the clip gates' bounds, :func:`snnhw.hw.neuron_lanes.neuron_constants`)
    moved by ±1 (seeded), each staying valid (θ ≥ 1, σ ≥ 0; a clip gate keeps its
    ``(−θ_g, θ_g)`` or ``(0, θ_i)`` form) and within its signed width, so the generated core's
    structure apart from its memory contents stays the same. Leaks, widths, weights and the
    head are kept.
    """
    import dataclasses

    rng = np.random.default_rng(seed)

    def moved(value: int, least: int) -> int:
        width = arith.signed_bits(min(value, 0), max(value, 0))
        options = [v for v in (value - 1, value + 1)
                   if v >= least and arith.signed_bits(min(v, 0), max(v, 0)) == width]
        return int(rng.choice(options)) if options else value

    def neuron(n, gate: str):
        if isinstance(n, BinaryNeuron):
            return dataclasses.replace(n, theta=moved(n.theta, 1))
        if isinstance(n, TernaryNeuron):
            return dataclasses.replace(n, theta_pos=moved(n.theta_pos, 1), theta_neg=moved(n.theta_neg, 1),
                                       shift_pos=moved(n.shift_pos, 0), shift_neg=moved(n.shift_neg, 0))
        hi = moved(n.hi, 1)
        return ClipGate(lo=-hi if gate == "g" else 0, hi=hi)

    layers = [dataclasses.replace(layer, **{a: neuron(getattr(layer, a), a) for a in ("f", "i", "g", "o", "c")})
              for layer in model.layers]
    return dataclasses.replace(model, layers=layers)


def same_structure_twin(model: FrozenSpiking | FrozenBaseline, seed: int) -> FrozenSpiking | FrozenBaseline:
    """Another model whose generated core differs from ``model``'s only in memory contents: the
    weights and biases permuted (:func:`permuted_weights`) and, for a spiking model, the neuron
    constants moved (:func:`varied_constants`). One compiled simulator serves both."""
    twin = permuted_weights(model, seed)
    return varied_constants(twin, seed) if isinstance(twin, FrozenSpiking) else twin

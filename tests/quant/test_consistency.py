"""Float spiking model ≡ integer golden model when quantization is lossless.

The float :class:`~snnhw.model.SpikingLSTM` is built in float64 with every parameter already on
the integer grid: weights, biases and thresholds are integers times a power-of-two unit u =
2^−7 (per gate, in z units), the non-spiking gate's threshold is 64·u (so g = z_int/64 and the
cell state are exact dyadic floats), the ternary shifts θ/(2T) are integers, and the direct
input is an integer times 2^−3. With such a model the quantizer must recover the integers
exactly, and then float and integer computations agree exactly, spike for spike.

Leaks: λ = 1 is exact. λ = 1/2 is the single term ``U >> 1``, which floors; it equals 0.5·U
only for even U. The second family of cases therefore makes every weight, bias, threshold and
shift a multiple of 8 = 2^(T−1): the membrane after t steps is then a multiple of 2^(T−t), so
every halving at t = 2..T is exact (the quantizer is run with ``scale_mode="pow2"`` there,
because a max-abs scale of 120/127 units would put the weights off the integer grid).
Other leak forms (e.g. 7/8) cannot be made exact without restricting the weights to a few
values, so they are covered by the golden model's own unit tests, not by this equivalence.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnhw.model import ModelConfig, SpikingLSTM
from snnhw.quant.golden import rate_encode, run_spiking
from snnhw.quant.quantizer import quantize_input, quantize_spiking

T = 4
D, H, C = 3, 5, 3
B, N = 6, 7
UNIT = 2.0 ** -7  # gate unit u: float value of one integer LSB of z
X_UNIT = 2.0 ** -3  # direct input unit α_x
CLIP_UNIT = 64  # θ of the non-spiking gate in integers (a power of two: exact float division)


def _ints(rng: np.random.Generator, shape: tuple[int, ...], top: int, step: int) -> np.ndarray:
    """Random multiples of ``step`` in [−top, top]; the first entry of each gate block pinned to ±top."""
    values = rng.integers(-(top // step), top // step + 1, size=shape) * step
    values = values.astype(np.int64)
    if len(shape) == 2:
        for a in range(4):
            values[a * H, 0] = top if a % 2 == 0 else -top
    return values


def build(encoding: str, gate: str, layers: int, half_leak: bool, seed: int) -> tuple[SpikingLSTM, list[dict]]:
    """A float64 spiking LSTM on the integer grid, and the integers it was built from."""
    rng = np.random.default_rng(seed)
    step = 8 if half_leak else 1
    top = 120 if half_leak else 127
    cfg = ModelConfig(input_size=D, num_classes=C, hidden_size=H, num_layers=layers, spiking=True, T=T,
                      encoding=encoding, nonspiking_gate=gate, shift=True)
    model = SpikingLSTM(cfg).double()
    truth = []
    with torch.no_grad():
        for index, layer in enumerate(model.layers):
            d_in = D if index == 0 else H
            wx = _ints(rng, (4 * H, d_in), top, step)
            wh = _ints(rng, (4 * H, H), top, step)
            wh[:, 0] = 0  # keep the pinned maxima in w_x (so w_x alone sets the direct-input scale)
            b = rng.integers(-30, 50, size=4 * H) * 8
            x_unit = UNIT / X_UNIT if (index == 0 and encoding == "direct") else UNIT
            layer.weight_x.copy_(torch.from_numpy(wx * x_unit))
            layer.weight_h.copy_(torch.from_numpy(wh * UNIT))
            layer.bias.copy_(torch.from_numpy(b * UNIT))
            th = {"f": 8 * int(rng.integers(6, 20)), "o": 8 * int(rng.integers(6, 20))}
            if gate == "g":
                th["i"] = 8 * int(rng.integers(6, 20))
                th["g"] = CLIP_UNIT
            else:
                th["i"] = CLIP_UNIT
                th["g"] = 64 * int(rng.integers(1, 3))
                th["g_neg"] = 64 * int(rng.integers(1, 3))
            for key, value in th.items():
                layer.theta[key].fill_(value * UNIT)
            c_pos, c_neg = (64 * int(rng.integers(1, 3)) for _ in range(2)) if half_leak else \
                (8 * int(rng.integers(4, 12)) for _ in range(2))
            layer.theta["c"].fill_(c_pos / CLIP_UNIT)
            layer.theta["c_neg"].fill_(c_neg / CLIP_UNIT)
            for lam in layer.leak.values():
                lam.fill_(0.5 if half_leak else 1.0)
            truth.append({"w_x": wx, "w_h": wh, "bias": b, "theta": th, "c": (c_pos, c_neg)})
    return model, truth


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Direct-input sequences on the 2^−3 grid (small values; one pinned 127 sets α_x)."""
    rng = np.random.default_rng(seed + 100)
    x_q = rng.integers(-6, 7, size=(B, N, D))
    x_q[0, 0, 0] = 127
    lengths = rng.integers(2, N + 1, size=B)
    lengths[0] = N
    return x_q * X_UNIT, lengths


CASES = [
    ("direct", "g", 1, False), ("direct", "i", 2, False), ("rate", "g", 2, False), ("rate", "i", 1, False),
    ("direct", "g", 2, True), ("rate", "i", 2, True), ("rate", "g", 1, True),
]


def _run(encoding: str, gate: str, layers: int, half_leak: bool, seed: int):
    model, truth = build(encoding, gate, layers, half_leak, seed)
    x, lengths = data(seed)
    frozen = quantize_spiking(model, calib_x=x, calib_lengths=lengths, scale_mode="pow2" if half_leak else "maxabs",
                              input_percentile=100.0,
                              rate_bits=6, seed=seed + 1)
    x_q = quantize_input(frozen, x)
    golden = run_spiking(frozen, x_q, lengths, trace=True, saturation=True)
    spikes = torch.from_numpy(rate_encode(frozen, x_q)).double() if encoding == "rate" else None
    with torch.no_grad():
        _, trace = model(torch.from_numpy(x), torch.from_numpy(lengths), spikes_in=spikes, record=True)
    return model, truth, frozen, golden, trace, lengths


def _valid(lengths: np.ndarray) -> np.ndarray:
    """bool [B, N, T, 1]: positions n < lengths[b] (the golden trace is 0 beyond)."""
    return (np.arange(N)[None, :] < lengths[:, None])[:, :, None, None]


def compare(frozen, golden, trace, lengths) -> dict[str, int]:
    """Number of mismatching (b, n, t, unit) positions per quantity and layer (0 everywhere = equal)."""
    valid = _valid(lengths)
    mism: dict[str, int] = {}
    for index, (g_tr, f_tr) in enumerate(zip(golden.trace, trace)):
        clip = frozen.layers[index].g if frozen.nonspiking_gate == "g" else frozen.layers[index].i
        unit = clip.hi  # the non-spiking gate value and the cell state count in units of 1/θ_int
        pairs = {"f": ("f", 1), "o": ("o", 1), "s_c": ("c", 1), "h": ("h", 1), "c": ("cell", unit),
                 "i": ("i", 1 if frozen.nonspiking_gate == "g" else unit),
                 "g": ("g", unit if frozen.nonspiking_gate == "g" else 1)}
        for name, (float_key, scale) in pairs.items():
            expected = f_tr[float_key].numpy() * scale
            assert np.array_equal(expected, np.round(expected)), f"float {float_key} left the integer grid"
            diff = (expected.astype(np.int64) != g_tr[name]) & valid
            mism[f"{index}.{name}"] = int(diff.sum())
    readout = trace[-1]["readout"].numpy() * T
    mism["readout"] = int((readout.astype(np.int64) != golden.readout).sum())
    return mism


@pytest.mark.parametrize("encoding,gate,layers,half_leak", CASES)
def test_float_and_golden_agree_spike_for_spike(encoding: str, gate: str, layers: int, half_leak: bool) -> None:
    model, truth, frozen, golden, trace, lengths = _run(encoding, gate, layers, half_leak, seed=7)
    # the quantizer recovered the integers the float model was built from
    for layer, t in zip(frozen.layers, truth):
        assert np.array_equal(layer.w_x, t["w_x"]) and np.array_equal(layer.w_h, t["w_h"])
        assert np.array_equal(layer.bias, t["bias"])
        assert layer.x_shift == (0, 0, 0, 0)
        assert layer.f.theta == t["theta"]["f"] and layer.o.theta == t["theta"]["o"]
        assert (layer.c.theta_pos, layer.c.theta_neg) == t["c"]
        assert layer.c.shift_pos == t["c"][0] // (2 * T) and layer.c.shift_neg == t["c"][1] // (2 * T)
    assert all(v == 0 for layer in golden.saturation for v in layer.values())
    # the comparison is meaningful: every spiking gate fires sometimes and not always
    valid = np.broadcast_to(_valid(lengths), golden.trace[0]["f"].shape)
    for g_tr in golden.trace:
        for name in ("f", "o", "s_c"):
            active = (g_tr[name] != 0)[valid]
            assert 0.02 < active.mean() < 0.98, f"{name} activity {active.mean():.2f}: test too weak"
        assert (g_tr["h"] != 0)[valid].any(), "no output spikes: test too weak"
    mism = compare(frozen, golden, trace, lengths)
    assert all(v == 0 for v in mism.values()), mism


def test_comparison_detects_a_one_lsb_change() -> None:
    """The equivalence check fails when the integer model differs by one threshold LSB."""
    model, truth, frozen, golden, trace, lengths = _run("direct", "g", 1, False, seed=7)
    layer = frozen.layers[0]
    changed = []
    for delta in (1, -1, 8, -8):
        layer.f = type(layer.f)(truth[0]["theta"]["f"] + delta, layer.f.leak, layer.f.membrane_bits)
        altered = run_spiking(frozen, quantize_input(frozen, data(7)[0]), lengths, trace=True)
        changed.append(sum(compare(frozen, altered, trace, lengths).values()))
    assert max(changed) > 0

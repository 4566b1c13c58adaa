"""The quantizer: leak fitting, scales, widths from bounds, baseline multipliers, head, saturation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from snnhw.errors import UserError
from snnhw.model import ModelConfig, build_model
from snnhw.quant import arith
from snnhw.quant.frozen import ClipGate, TernaryNeuron
from snnhw.quant.golden import run_baseline, run_spiking
from snnhw.quant.leak_fit import MAX_LEAK_TERMS, fit_leak
from snnhw.quant.quantizer import (
    calibration_input_scale,
    quantize_baseline,
    quantize_input,
    quantize_spiking,
    saturation_report,
    weight_scale,
)

# ------------------------------------------------------------------------------ leak fit


@pytest.mark.parametrize("lam,terms", [
    (1.0, ((1, 0),)), (0.875, ((1, 0), (-1, 3))), (1.125, ((1, 0), (1, 3))), (0.5, ((1, 1),)),
    (0.75, ((1, 0), (-1, 2))), (1.5, ((1, 0), (1, 1))), (1.7, ((1, 0), (1, 1))), (1e-9, ((1, 15),)),
])
def test_fit_leak_examples(lam: float, terms: tuple) -> None:
    assert fit_leak(lam, 2) == terms


def test_fit_leak_is_the_best_k_term_form() -> None:
    """Exhaustive check against every sum of ≤ K signed powers of two (any exponents 0..15)."""
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        values = [arith.leak_value(t) for n in range(1, k + 1)
                  for es in itertools.combinations_with_replacement(range(16), n)
                  for t in (tuple(zip(s, es)) for s in itertools.product((1, -1), repeat=n))]
        values = np.asarray(values)
        for lam in rng.uniform(0.05, 1.6, size=40):
            got = arith.leak_value(fit_leak(float(lam), k))
            assert abs(got - lam) <= np.abs(values - lam).min() + 1e-15
            assert len(fit_leak(float(lam), k)) <= k


def test_fit_leak_rejects_bad_input() -> None:
    for lam in (0.0, -0.5, float("nan"), float("inf")):
        with pytest.raises(UserError):
            fit_leak(lam)
    for k in (0, MAX_LEAK_TERMS + 1):
        with pytest.raises(UserError):
            fit_leak(0.9, k)


# ------------------------------------------------------------------------------ helpers


def _spiking_model(seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    args = dict(input_size=4, num_classes=3, hidden_size=8, num_layers=1, spiking=True, T=4, encoding="direct",
                nonspiking_gate="g")
    args.update(kw)
    model = build_model(ModelConfig(**args)).double()
    with torch.no_grad():
        for layer in model.layers:
            for key, lam in layer.leak.items():
                lam.fill_({"f": 0.9, "o": 0.95, "c": 1.0}.get(key, 0.8))
            for key, th in layer.theta.items():
                th.fill_(0.7 + 0.1 * len(key))
    model.eval()
    return model


def _data(seed: int = 1, n: int = 24, length: int = 9, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, d))
    lengths = rng.integers(3, length + 1, size=n)
    x[np.arange(length)[None, :] >= lengths[:, None]] = 0.0
    return x, lengths


# ------------------------------------------------------------------------------ spiking


def test_scales_use_the_full_weight_range_and_theta_rounds() -> None:
    model = _spiking_model()
    x, lengths = _data()
    for bits in (4, 8, 12):
        frozen = quantize_spiking(model, weight_bits=bits, calib_x=x, calib_lengths=lengths)
        layer, scales = frozen.layers[0], frozen.scales["layers"][0]
        top = (1 << (bits - 1)) - 1
        h = layer.hidden_size
        for a, gate in enumerate("figo"):
            rows = slice(a * h, (a + 1) * h)
            # the largest weight of each gate (in z units per input LSB) sits at the end of the range
            assert max(np.abs(layer.w_x[rows]).max(), np.abs(layer.w_h[rows]).max()) == top
            alpha = scales["alpha"][gate]
            wh_float = model.layers[0].weight_h.detach().numpy()[rows]
            assert np.abs(layer.w_h[rows] * alpha - wh_float).max() <= alpha / 2 + 1e-12
        alpha_f = scales["alpha"]["f"]
        assert layer.f.theta == int(np.floor(float(model.layers[0].theta["f"].detach()) / alpha_f + 0.5))
        assert isinstance(layer.g, ClipGate) and layer.g.lo == -layer.g.hi
        # c in units of 1/θ_g_int: θ_c_int = round(θ_c·θ_g_int), σ = round(θ_c·θ_g_int/(2T))
        q = layer.g.hi
        assert layer.c.theta_pos == int(np.floor(float(model.layers[0].theta["c"].detach()) * q + 0.5))
        assert layer.c.shift_pos == int(np.floor(float(model.layers[0].theta["c"].detach()) * q / 8 + 0.5))
        assert layer.f.leak == fit_leak(0.9) and layer.c.leak == ((1, 0),)


def test_direct_input_scale_and_shift() -> None:
    model = _spiking_model()
    x, lengths = _data()
    frozen = quantize_spiking(model, input_bits=6, calib_x=x, calib_lengths=lengths, input_percentile=100.0)
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
    assert frozen.input_scale == pytest.approx(np.abs(x[valid]).max() / 31)
    assert np.abs(quantize_input(frozen, x)).max() == 31
    default = quantize_spiking(model, input_bits=6, calib_x=x, calib_lengths=lengths)
    assert default.input_scale == pytest.approx(np.percentile(np.abs(x[valid]), 99.9) / 31)
    p99 = quantize_spiking(model, input_bits=6, calib_x=x, calib_lengths=lengths, input_percentile=99.0)
    assert p99.input_scale < default.input_scale < frozen.input_scale
    layer = frozen.layers[0]
    for a in range(4):
        rows = slice(a * 8, (a + 1) * 8)
        top = np.abs(layer.w_x[rows]).max()
        assert top <= 127 and (2 * top > 127 or layer.x_shift[a] == 16)  # one more shift would overflow


def test_widths_hold_every_value_and_are_bounds() -> None:
    """Worst-case widths: no membrane saturates on any data; narrower membranes do."""
    model = _spiking_model(hidden_size=6)
    x, lengths = _data()
    x = x * 3.0
    frozen = quantize_spiking(model, calib_x=x, calib_lengths=lengths)
    res = run_spiking(frozen, quantize_input(frozen, x), lengths, trace=True, saturation=True)
    sat = res.saturation[0]
    assert all(sat[k] == 0 for k in sat if k.startswith("U_")) and sat["c"] == 0
    layer = frozen.layers[0]
    lo, hi = arith.signed_range(layer.acc_bits)
    assert lo <= res.trace[0]["z"].min() and res.trace[0]["z"].max() <= hi
    assert arith.signed_bits(0, int(np.abs(res.trace[0]["z"]).max())) <= layer.acc_bits
    cell_limit = x.shape[1] * layer.g.hi
    assert arith.signed_range(layer.cell_bits)[1] >= cell_limit
    narrow = quantize_spiking(model, calib_x=x, calib_lengths=lengths, membrane_headroom=-6)
    report = saturation_report(narrow, x, lengths)
    assert report["total"] > 0
    assert report["layers"][0]["U_f"]["updates"] == int(lengths.sum()) * 4 * 6


def test_cell_register_from_n_max_saturates_beyond() -> None:
    model = _spiking_model()
    x, lengths = _data()
    frozen = quantize_spiking(model, calib_x=x, calib_lengths=lengths, n_max=1)
    assert arith.signed_range(frozen.layers[0].cell_bits)[1] >= frozen.layers[0].g.hi
    assert frozen.layers[0].cell_bits < quantize_spiking(model, calib_x=x, calib_lengths=lengths).layers[0].cell_bits


def test_rate_model_seeds_and_scale() -> None:
    model = _spiking_model(encoding="rate", nonspiking_gate="i", num_layers=2)
    a = quantize_spiking(model, rate_bits=6, n_max=10, seed=3)
    b = quantize_spiking(model, rate_bits=6, n_max=10, seed=3)
    c = quantize_spiking(model, rate_bits=6, n_max=10, seed=4)
    assert np.array_equal(a.lfsr_seeds, b.lfsr_seeds) and not np.array_equal(a.lfsr_seeds, c.lfsr_seeds)
    assert a.lfsr_seeds.min() >= 1 and a.lfsr_seeds.max() < 2 ** 32
    assert a.input_scale == 2.0 ** -6 and all(layer.x_shift == (0, 0, 0, 0) for layer in a.layers)
    assert isinstance(a.layers[0].i, ClipGate) and a.layers[0].i.lo == 0
    assert isinstance(a.layers[0].g, TernaryNeuron) and a.layers[0].g.shift_pos > 0


def test_more_bits_track_the_float_model_better() -> None:
    model = _spiking_model(hidden_size=16, encoding="rate")
    x, lengths = _data(n=40)
    x = np.clip(x / 3, -1, 1)
    errors = {}
    for bits in (3, 6, 12):
        frozen = quantize_spiking(model, weight_bits=bits, rate_bits=8, n_max=x.shape[1])
        x_q = quantize_input(frozen, x)
        from snnhw.quant.golden import rate_encode

        spikes = rate_encode(frozen, x_q)
        res = run_spiking(frozen, x_q, lengths)
        with torch.no_grad():
            _, trace = model(torch.from_numpy(x), torch.from_numpy(lengths), spikes_in=torch.from_numpy(spikes).double(),
                             record=True)
        errors[bits] = float(np.abs(res.readout - trace[-1]["readout"].numpy() * 4).mean())
    assert errors[12] < errors[3] and errors[12] <= errors[6]


def test_head_with_hidden_layer_fits_its_width() -> None:
    model = _spiking_model(head_hidden=5)
    x, lengths = _data()
    frozen = quantize_spiking(model, calib_x=x, calib_lengths=lengths, head_hidden_bits=4)
    head = frozen.head
    res = run_spiking(frozen, quantize_input(frozen, x), lengths)
    acc = res.readout @ head.w_hidden.T + head.b_hidden
    assert (np.maximum(acc, 0) >> head.hidden_shift).max() <= 15
    if head.hidden_shift > 0:
        assert (np.maximum(acc, 0) >> (head.hidden_shift - 1)).max() > 15


def test_quantizer_errors() -> None:
    model = _spiking_model()
    with pytest.raises(UserError, match="calibration"):
        quantize_spiking(model)
    with pytest.raises(UserError, match="weight_bits"):
        quantize_spiking(model, weight_bits=1, n_max=4, input_scale=0.1)
    with pytest.raises(UserError, match="scale mode"):
        weight_scale(1.0, 8, "log")
    with pytest.raises(UserError, match="all zero"):
        calibration_input_scale(np.zeros((2, 3, 4)), None, 8)
    hard = build_model(ModelConfig(input_size=4, num_classes=3, hidden_size=8))
    with pytest.raises(UserError, match="spiking"):
        quantize_spiking(hard, n_max=4, input_scale=0.1)
    with pytest.raises(UserError, match="hard"):
        quantize_baseline(model, n_max=4, input_scale=0.1)


# ------------------------------------------------------------------------------ baseline


def _hard_model(seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    args = dict(input_size=4, num_classes=3, hidden_size=8, num_layers=2)
    args.update(kw)
    model = build_model(ModelConfig(**args)).double()
    with torch.no_grad():
        for layer in model.layers:
            for key, v in layer.V.items():
                v.fill_(0.6 + 0.1 * len(key) + 0.05 * "figoc".index(key[0]))
    return model.eval()


def test_baseline_multipliers_and_fidelity() -> None:
    model = _hard_model()
    x, lengths = _data()
    frozen = quantize_baseline(model, weight_bits=12, act_bits=12, input_bits=12, calib_x=x,
                               calib_lengths=lengths, input_percentile=100.0)
    layer, scales = frozen.layers[0], frozen.scales["layers"][0]
    Q = 1 << 11
    S = layer.act_shift
    assert S == scales["act_shift"] and min(m for pair in layer.act_mult.values() for m in pair) >= 2 ** 13
    V = {k: float(v.detach()) for k, v in model.layers[0].V.items()}
    assert layer.act_mult["f"][0] == int(np.floor(2 ** S * scales["alpha"]["f"] * Q / V["f"] + 0.5))
    assert layer.act_mult["g"] == (int(np.floor(2 ** S * scales["alpha"]["g"] * Q / V["g"] + 0.5)),
                                   int(np.floor(2 ** S * scales["alpha"]["g"] * Q / V["g_neg"] + 0.5)))
    assert layer.c_mult == (int(np.floor(2 ** S / V["c"] + 0.5)), int(np.floor(2 ** S / V["c_neg"] + 0.5)))
    res = run_baseline(frozen, quantize_input(frozen, x), lengths, saturation=True)
    with torch.no_grad():
        r = model.readout(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    assert np.abs(res.readout / Q - r).max() < 1e-2 and np.abs(res.readout / Q - r).mean() < 2e-3
    assert all(v == 0 for layer_sat in res.saturation for v in layer_sat.values())
    low = quantize_baseline(model, weight_bits=4, act_bits=4, calib_x=x, calib_lengths=lengths)
    res_low = run_baseline(low, quantize_input(low, x), lengths)
    assert np.abs(res_low.readout / 8 - r).max() > np.abs(res.readout / Q - r).max()


def test_baseline_head_hidden() -> None:
    model = _hard_model(head_hidden=6, num_layers=1)
    x, lengths = _data()
    frozen = quantize_baseline(model, calib_x=x, calib_lengths=lengths)
    assert frozen.head.w_hidden is not None and frozen.head.w_hidden.shape == (6, 8)
    res = run_baseline(frozen, quantize_input(frozen, x), lengths)
    with torch.no_grad():
        logits = model(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    assert (res.classes == logits.argmax(1)).mean() >= 0.75

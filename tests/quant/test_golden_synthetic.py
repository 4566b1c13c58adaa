"""Synthetic frozen models: valid, spiking at intermediate rates, saturating when asked."""

from __future__ import annotations

import numpy as np
import pytest

from snnhw.quant import arith, golden, synthetic
from snnhw.quant.frozen_io import validate_frozen

VARIANTS = [
    dict(),
    dict(nonspiking_gate="i"),
    dict(encoding="rate"),
    dict(leak="lif", T=2),
    dict(leak="gt1", T=8),
    dict(num_layers=2, T=1),
    dict(weight_bits=4, input_bits=4),
    dict(weight_bits=16, input_bits=12),
    dict(weight_bits=2, input_bits=3, T=3),
]


@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_spike_rates_are_intermediate(variant: int) -> None:
    kwargs = dict(input_size=6, hidden_size=16, T=4)
    kwargs.update(VARIANTS[variant])
    model = synthetic.random_frozen_spiking(variant, **kwargs)
    validate_frozen(model)
    x, lengths = synthetic.random_inputs(model, variant, batch=24, n_max=16)
    result = golden.run_spiking(model, x, lengths, counters=True, saturation=True)
    for layer in result.counters["layers"]:
        for name, rate in layer["sparsity"].items():
            assert 0.03 < rate < 0.97, (variant, layer["layer"], name, rate)
    for counts in result.saturation:
        assert sum(counts.values()) == 0, counts
    assert len(set(result.classes.tolist())) > 1


@pytest.mark.parametrize("kwargs", [dict(), dict(nonspiking_gate="i", leak="gt1"), dict(num_layers=2)])
def test_saturate_option_really_saturates(kwargs: dict) -> None:
    model = synthetic.random_frozen_spiking(3, input_size=6, hidden_size=16, T=4, saturate=True, **kwargs)
    validate_frozen(model)
    x, lengths = synthetic.random_inputs(model, 3, batch=16, n_max=16)
    result = golden.run_spiking(model, x, lengths, saturation=True)
    for counts in result.saturation:
        assert counts["c"] > 0 and counts["U_c"] > 0 and counts["U_f"] > 0, counts


def test_models_are_valid_and_deterministic() -> None:
    for encoding in ("direct", "rate"):
        a = synthetic.random_frozen_spiking(11, input_size=5, hidden_size=8, T=3, encoding=encoding,
                                            num_layers=2, weight_bits=6)
        b = synthetic.random_frozen_spiking(11, input_size=5, hidden_size=8, T=3, encoding=encoding,
                                            num_layers=2, weight_bits=6)
        for la, lb in zip(a.layers, b.layers):
            assert np.array_equal(la.w_x, lb.w_x) and np.array_equal(la.w_h, lb.w_h)
        lo, hi = arith.signed_range(6)
        for layer in a.layers:
            assert lo < layer.w_x.min() and layer.w_x.max() <= hi and layer.w_h.max() <= hi
        assert a.lfsr_seeds.min() > 0 and a.lfsr_seeds.max() < 1 << 32
        # acc_bits really bounds |z|: the trace's pre-activations fit
        x, lengths = synthetic.random_inputs(a, 1, batch=8, n_max=10)
        trace = golden.run_spiking(a, x, lengths, trace=True).trace
        for layer, tr in zip(a.layers, trace):
            zlo, zhi = arith.signed_range(layer.acc_bits)
            assert zlo <= tr["z"].min() and tr["z"].max() <= zhi
    assert not np.array_equal(
        synthetic.random_frozen_spiking(1, input_size=5, hidden_size=8, T=2).layers[0].w_h,
        synthetic.random_frozen_spiking(2, input_size=5, hidden_size=8, T=2).layers[0].w_h)


def test_random_inputs_ranges_and_lengths() -> None:
    direct = synthetic.random_frozen_spiking(1, input_size=4, hidden_size=4, T=2, input_bits=6)
    x, lengths = synthetic.random_inputs(direct, 1, batch=20, n_max=9)
    assert x.shape == (20, 9, 4) and lengths[0] == 9 and lengths.min() >= 1 and len(set(lengths.tolist())) > 2
    lo, hi = arith.signed_range(6)
    assert lo <= x.min() and x.max() <= hi and np.abs(x).max() > hi // 2
    for b, n in enumerate(lengths):
        assert not x[b, n:].any()
    rate = synthetic.random_frozen_spiking(1, input_size=4, hidden_size=4, T=3, encoding="rate", rate_bits=5)
    xr, _ = synthetic.random_inputs(rate, 2, batch=10, n_max=5, vary_lengths=False)
    assert np.abs(xr).max() <= 31 and np.abs(xr).max() > 20
    spikes, lengths = synthetic.random_inputs(rate, 2, batch=10, n_max=5, spikes=True)
    assert spikes.shape == (10, 5, 3, 4) and set(np.unique(spikes)) == {-1, 0, 1}
    with pytest.raises(ValueError):
        synthetic.random_inputs(direct, 1, batch=2, n_max=3, spikes=True)


def test_leak_presets_and_terms() -> None:
    assert arith.leak_value(synthetic.leak_terms("if")) == 1.0
    assert arith.leak_value(synthetic.leak_terms("lif")) == 0.875
    assert arith.leak_value(synthetic.leak_terms("gt1")) == 1.125
    assert synthetic.leak_terms([[1, 0], [-1, 4]]) == ((1, 0), (-1, 4))
    with pytest.raises(ValueError):
        synthetic.leak_terms("nope")
    model = synthetic.random_frozen_spiking(1, input_size=2, hidden_size=3, T=2, leak=[[1, 0], [-1, 2]])
    assert model.layers[0].f.leak == ((1, 0), (-1, 2))

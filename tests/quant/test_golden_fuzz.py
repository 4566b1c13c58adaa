"""Randomised equivalence of the vectorised golden models with the scalar references.

150 random configurations (widths 2..16, T ∈ {1, 2, 3, 4, 8}, 1-2 layers, both non-spiking
gates, direct / rate / explicit-spike input, leaks IF / 7/8 / 1.125 / three-term, shifts on
and off, saturating models, heads with and without a hidden layer, chunk sizes 1-3) for the
spiking model and the baseline (about 3 s of CPU).
"""

from __future__ import annotations

import numpy as np

from snnhw.quant import golden, synthetic
from snnhw.quant.frozen_io import validate_frozen
from test_golden import reference_head, reference_spiking
from test_golden_baseline import reference_baseline


def test_random_configurations_match_the_scalar_references() -> None:
    rng = np.random.default_rng(2026)
    for trial in range(150):
        leak = [("if", "lif", "gt1")[int(rng.integers(0, 3))],
                [[1, 0], [-1, int(rng.integers(1, 6))], [1, int(rng.integers(2, 9))]]][int(rng.integers(0, 2))]
        kw = dict(input_size=int(rng.integers(1, 5)), hidden_size=int(rng.integers(1, 5)),
                  T=int(rng.choice([1, 2, 3, 4, 8])), num_layers=int(rng.integers(1, 3)),
                  num_classes=int(rng.integers(2, 5)), nonspiking_gate=str(rng.choice(["i", "g"])),
                  encoding=str(rng.choice(["direct", "rate"])), weight_bits=int(rng.integers(2, 17)),
                  input_bits=int(rng.integers(2, 13)), rate_bits=int(rng.integers(1, 9)), leak=leak,
                  shifts=bool(rng.integers(0, 2)), head_hidden=int(rng.choice([0, 0, 3])),
                  saturate=bool(rng.integers(0, 2)))
        model = synthetic.random_frozen_spiking(trial, **kw)
        validate_frozen(model)
        spikes = model.encoding == "rate" and bool(rng.integers(0, 2))
        x, lengths = synthetic.random_inputs(model, trial, batch=int(rng.integers(1, 5)),
                                             n_max=int(rng.integers(1, 7)), spikes=spikes)
        result = golden.run_spiking(model, None if spikes else x, lengths, spikes_in=x if spikes else None,
                                    chunk=int(rng.integers(1, 4)))
        for b in range(len(lengths)):
            readout, _ = reference_spiking(model, None if spikes else x[b], int(lengths[b]),
                                           spikes=x[b] if spikes else None)
            assert result.readout[b].tolist() == readout, (trial, kw)
            assert result.logits[b].tolist() == reference_head(model.head, readout), (trial, kw)
        base_kw = dict(input_size=kw["input_size"], hidden_size=kw["hidden_size"], num_layers=kw["num_layers"],
                       weight_bits=kw["weight_bits"], input_bits=kw["input_bits"],
                       act_bits=int(rng.integers(2, 13)), act_shift=int(rng.integers(8, 25)),
                       head_hidden=kw["head_hidden"], saturate=kw["saturate"])
        base = synthetic.random_frozen_baseline(trial, **base_kw)
        validate_frozen(base)
        xb, lb = synthetic.random_inputs(base, trial, batch=3, n_max=5)
        res_b = golden.run_baseline(base, xb, lb, chunk=2)
        for b in range(3):
            readout, _ = reference_baseline(base, xb[b], int(lb[b]))
            assert res_b.readout[b].tolist() == readout, (trial, base_kw)

"""Golden MAC baseline: vectorised runner vs a per-sample, per-element, per-unit scalar loop."""

from __future__ import annotations

import numpy as np
import pytest

from snnhw.errors import UserError
from snnhw.quant import arith, golden, synthetic
from snnhw.quant.frozen import FrozenBaseline
from snnhw.quant.frozen_io import validate_frozen


def reference_baseline(model: FrozenBaseline, x: np.ndarray, length: int) -> tuple[list[int], list]:
    """Scalar baseline of one sequence with arith primitives: (readout, per-layer (h, c) lists)."""
    q = model.frac_bits
    q_one = 1 << q
    below = [[int(v) for v in x[n]] for n in range(length)]
    record = []
    for index, layer in enumerate(model.layers):
        H = layer.hidden_size
        h = [[0] * H for _ in range(length)]
        c = [[0] * H for _ in range(length)]
        for n in range(length):
            for k in range(H):
                z = []
                for a in range(4):
                    r = a * H + k
                    acc = sum(int(layer.w_x[r, d]) * below[n][d] for d in range(layer.input_size))
                    acc >>= layer.x_shift[a]
                    if n > 0:
                        acc += sum(int(layer.w_h[r, j]) * h[n - 1][j] for j in range(H))
                    z.append(acc + int(layer.bias[r]))
                f = arith.scaled_clip(z[0], layer.act_mult["f"][0], layer.act_shift, q_one // 2, 0, q_one)
                i = arith.scaled_clip(z[1], layer.act_mult["i"][0], layer.act_shift, q_one // 2, 0, q_one)
                o = arith.scaled_clip(z[3], layer.act_mult["o"][0], layer.act_shift, q_one // 2, 0, q_one)
                g = arith.sign_scaled_clip(z[2], *layer.act_mult["g"], layer.act_shift, -q_one, q_one)
                c_prev = c[n - 1][k] if n > 0 else 0
                c[n][k] = arith.baseline_cell(f, c_prev, i, g, q, layer.cell_bits)
                tc = arith.sign_scaled_clip(c[n][k], *layer.c_mult, layer.act_shift, -q_one, q_one)
                h[n][k] = arith.baseline_hidden(o, tc, q)
        record.append((h, c))
        below = h
    return list(record[-1][0][length - 1]), record


CASES = [
    dict(),
    dict(act_bits=4, weight_bits=4, input_bits=6),
    dict(num_layers=2, head_hidden=3),
    dict(saturate=True),
    dict(act_bits=12, weight_bits=16, act_shift=20),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_baseline_matches_scalar_reference(case: int) -> None:
    kwargs = dict(input_size=3, hidden_size=4, num_classes=3)
    kwargs.update(CASES[case])
    model = synthetic.random_frozen_baseline(200 + case, **kwargs)
    validate_frozen(model)
    x, lengths = synthetic.random_inputs(model, 11 + case, batch=5, n_max=6)
    result = golden.run_baseline(model, x, lengths, trace=True, chunk=2)
    for b in range(5):
        n_b = int(lengths[b])
        readout, record = reference_baseline(model, x[b], n_b)
        assert result.readout[b].tolist() == readout
        for layer, (h, c) in enumerate(record):
            assert result.trace[layer]["h"][b, :n_b].tolist() == h
            assert result.trace[layer]["c"][b, :n_b].tolist() == c
            assert not result.trace[layer]["h"][b, n_b:].any()
    assert np.array_equal(result.logits, golden.head_forward(model.head, result.readout))


def test_baseline_activations_are_not_degenerate() -> None:
    model = synthetic.random_frozen_baseline(3, input_size=9, hidden_size=16)
    x, lengths = synthetic.random_inputs(model, 3, batch=32, n_max=20)
    tr = golden.run_baseline(model, x, lengths, trace=True).trace[0]
    active = np.arange(20)[None, :] < lengths[:, None]
    q_one = 1 << model.frac_bits
    for name in ("f", "i", "o"):
        values = tr[name][active]
        interior = np.mean((values > 0) & (values < q_one))
        assert interior > 0.2, (name, interior)
    assert 0.2 < np.mean(tr["h"][active] != 0)


def test_baseline_saturation_happens_when_requested() -> None:
    model = synthetic.random_frozen_baseline(4, input_size=5, hidden_size=8, saturate=True)
    x, lengths = synthetic.random_inputs(model, 4, batch=16, n_max=12)
    assert golden.run_baseline(model, x, lengths, saturation=True).saturation[0]["c"] > 0
    normal = synthetic.random_frozen_baseline(4, input_size=5, hidden_size=8)
    assert golden.run_baseline(normal, x, lengths, saturation=True).saturation[0]["c"] == 0


def test_baseline_rejects_bad_input_and_asymmetric_sigmoid() -> None:
    model = synthetic.random_frozen_baseline(5, input_size=3, hidden_size=4)
    x, lengths = synthetic.random_inputs(model, 5, batch=2, n_max=3)
    with pytest.raises(UserError):
        golden.run_baseline(model, x[..., :1], lengths)
    with pytest.raises(UserError):
        golden.run_baseline(model, x * 1000, lengths)
    model.layers[0].act_mult["f"] = (10, 11)
    with pytest.raises(ValueError):
        golden.run_baseline(model, x, lengths)

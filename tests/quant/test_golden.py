"""Golden spiking model: vectorised runner vs a per-sample, per-(n,t), per-unit scalar loop.

The reference below composes the same ``arith`` primitives one scalar at a time (Python
ints), in the plainest order: it checks the golden model's batching, masking, chunking,
BLAS products and layer plumbing, not the contract's rules (the hand-computed cases in
``test_quant_golden_cases.py`` do that).
"""

from __future__ import annotations

import numpy as np
import pytest

from snnhw.errors import UserError
from snnhw.quant import arith, golden, synthetic
from snnhw.quant.frozen import ClipGate, FrozenSpiking, SpikingLayer


def _neuron_step(neuron, u: int, y: int) -> tuple[int, int]:
    """A scalar LIF step with the arith primitive matching the neuron type."""
    if hasattr(neuron, "theta"):
        return arith.binary_lif(u, y, neuron.theta, neuron.leak, neuron.leak_rounding, neuron.membrane_bits)
    return arith.ternary_lif(u, y, neuron.theta_pos, neuron.theta_neg, neuron.shift_pos, neuron.shift_neg,
                             neuron.leak, neuron.leak_rounding, neuron.membrane_bits)


def _layer_inputs(model: FrozenSpiking, x: np.ndarray | None, spikes: np.ndarray | None, length: int):
    """Layer-1 input per (n, t): ("p", projection row list) for direct, ("u", spikes) otherwise."""
    T = model.T
    layer = model.layers[0]
    H = layer.hidden_size
    out = []
    if spikes is not None:
        return [[("u", [int(v) for v in spikes[n, t]]) for t in range(T)] for n in range(length)]
    if model.encoding == "rate":
        states = [int(s) for s in model.lfsr_seeds]
        for n in range(length):
            row = []
            for _ in range(T):
                states = [arith.xorshift32(s) for s in states]
                u = []
                for d, s in enumerate(states):
                    xv = int(x[n, d])
                    sign = (xv > 0) - (xv < 0)
                    u.append(sign if (s >> (32 - model.rate_bits)) < abs(xv) else 0)
                row.append(("u", u))
            out.append(row)
        return out
    for n in range(length):
        p = []
        for r in range(4 * H):
            acc = sum(int(layer.w_x[r, d]) * int(x[n, d]) for d in range(layer.input_size))
            p.append(acc >> layer.x_shift[r // H])
        out.append([("p", p)] * T)
    return out


def reference_spiking(model: FrozenSpiking, x: np.ndarray | None, length: int, spikes: np.ndarray | None = None):
    """Scalar golden model of one sequence: returns (readout list, per-layer h[n][t][j], c, s_f)."""
    T = model.T
    inputs = _layer_inputs(model, x, spikes, length)
    record = []
    for layer in model.layers:
        H = layer.hidden_size
        h = [[[0] * H for _ in range(T)] for _ in range(length)]
        c = [[[0] * H for _ in range(T)] for _ in range(length)]
        for n in range(length):
            membranes = {name: [0] * H for name in ("f", "i", "g", "o", "c")}
            for t in range(T):
                kind, vec = inputs[n][t]
                for k in range(H):
                    z = []
                    for a in range(4):
                        r = a * H + k
                        if kind == "p":
                            total = vec[r]
                        else:
                            total = sum(int(layer.w_x[r, d]) * vec[d] for d in range(len(vec)))
                        if n > 0:
                            total += sum(int(layer.w_h[r, j]) * h[n - 1][t][j] for j in range(H))
                        z.append(total + int(layer.bias[r]))
                    s_f, membranes["f"][k] = _neuron_step(layer.f, membranes["f"][k], z[0])
                    s_o, membranes["o"][k] = _neuron_step(layer.o, membranes["o"][k], z[3])
                    if isinstance(layer.i, ClipGate):
                        i_val = arith.clip(z[1], layer.i.lo, layer.i.hi)
                    else:
                        i_val, membranes["i"][k] = _neuron_step(layer.i, membranes["i"][k], z[1])
                    if isinstance(layer.g, ClipGate):
                        g_val = arith.clip(z[2], layer.g.lo, layer.g.hi)
                        q = arith.spike_select(i_val, g_val)
                    else:
                        g_val, membranes["g"][k] = _neuron_step(layer.g, membranes["g"][k], z[2])
                        q = arith.spike_select(g_val, i_val)
                    c_prev = c[n - 1][t][k] if n > 0 else 0
                    c[n][t][k] = arith.cell_update(c_prev, s_f, q, layer.cell_bits)
                    s_c, membranes["c"][k] = _neuron_step(layer.c, membranes["c"][k], c[n][t][k])
                    h[n][t][k] = arith.spike_select(s_o, s_c)
        record.append((h, c))
        inputs = [[("u", h[n][t]) for t in range(T)] for n in range(length)]
    h_last = record[-1][0]
    readout = [sum(h_last[length - 1][t][j] for t in range(T)) for j in range(model.hidden_size)]
    return readout, record


def reference_head(head, r: list[int]) -> list[int]:
    """Scalar FC head."""
    a = r
    if head.w_hidden is not None:
        a = []
        for u in range(head.w_hidden.shape[0]):
            v = sum(int(head.w_hidden[u, j]) * r[j] for j in range(len(r))) + int(head.b_hidden[u])
            a.append(arith.clip(v >> head.hidden_shift, 0, (1 << head.hidden_bits) - 1))
    return [sum(int(head.w_out[k, j]) * a[j] for j in range(len(a))) + int(head.b_out[k])
            for k in range(head.w_out.shape[0])]


CASES = [
    dict(T=1),
    dict(T=2, leak="lif"),
    dict(T=3, leak="gt1", nonspiking_gate="i"),
    dict(T=4, encoding="rate"),
    dict(T=8, leak=((1, 0), (-1, 2), (1, 4))),
    dict(T=2, num_layers=2, head_hidden=5),
    dict(T=3, num_layers=2, nonspiking_gate="i", encoding="rate", leak="lif"),
    dict(T=4, saturate=True),
    dict(T=2, saturate=True, nonspiking_gate="i", leak="gt1", shifts=False),
    dict(T=2, weight_bits=16, input_bits=12),
    dict(T=3, weight_bits=3, input_bits=4),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_spiking_matches_scalar_reference(case: int) -> None:
    kwargs = dict(input_size=3, hidden_size=4, num_classes=3)
    kwargs.update(CASES[case])
    model = synthetic.random_frozen_spiking(100 + case, **kwargs)
    x, lengths = synthetic.random_inputs(model, 7 + case, batch=5, n_max=6)
    lengths[1] = 1  # N = 1 is always covered
    x[1, 1:] = 0
    result = golden.run_spiking(model, x, lengths, trace=True, chunk=2)
    for b in range(len(lengths)):
        readout, record = reference_spiking(model, x[b], int(lengths[b]))
        assert result.readout[b].tolist() == readout
        assert result.logits[b].tolist() == reference_head(model.head, readout)
        for layer, (h, c) in enumerate(record):
            n_b = int(lengths[b])
            assert result.trace[layer]["h"][b, :n_b].tolist() == h
            assert result.trace[layer]["c"][b, :n_b].tolist() == c
            assert not result.trace[layer]["h"][b, n_b:].any()
    assert result.classes.tolist() == [int(np.argmax(row)) for row in result.logits]


def test_explicit_spike_input_matches_reference() -> None:
    model = synthetic.random_frozen_spiking(5, input_size=3, hidden_size=4, T=3, encoding="rate", num_layers=2)
    spikes, lengths = synthetic.random_inputs(model, 9, batch=4, n_max=5, spikes=True)
    result = golden.run_spiking(model, None, lengths, spikes_in=spikes)
    for b in range(4):
        readout, _ = reference_spiking(model, None, int(lengths[b]), spikes=spikes[b])
        assert result.readout[b].tolist() == readout


def test_rate_encoder_matches_explicit_spikes_and_resets_per_sequence() -> None:
    model = synthetic.random_frozen_spiking(6, input_size=4, hidden_size=5, T=4, encoding="rate")
    x, _ = synthetic.random_inputs(model, 3, batch=3, n_max=7, vary_lengths=False)
    x[2] = x[0]  # the same sequence twice in one batch: the encoder restarts from the seeds
    spikes = golden.rate_encode(model, x)
    assert np.array_equal(spikes[0], spikes[2])
    assert set(np.unique(spikes)) <= {-1, 0, 1}
    # first element, first time step: one xorshift32 step from each seed
    first = arith.xorshift32(np.asarray(model.lfsr_seeds, dtype=np.int64))
    expected = np.sign(x[0, 0]) * ((first >> (32 - model.rate_bits)) < np.abs(x[0, 0]))
    assert spikes[0, 0, 0].tolist() == expected.tolist()
    via_rate = golden.run_spiking(model, x, None)
    via_spikes = golden.run_spiking(model, None, None, spikes_in=spikes)
    assert np.array_equal(via_rate.readout, via_spikes.readout)


def test_chunking_and_length_order_do_not_change_results() -> None:
    model = synthetic.random_frozen_spiking(8, input_size=3, hidden_size=6, T=3, num_layers=2)
    x, lengths = synthetic.random_inputs(model, 4, batch=11, n_max=9)
    whole = golden.run_spiking(model, x, lengths, saturation=True, counters=True)
    for chunk in (1, 3, 64):
        part = golden.run_spiking(model, x, lengths, saturation=True, counters=True, chunk=chunk)
        assert np.array_equal(part.readout, whole.readout)
        assert part.saturation == whole.saturation
        assert part.counters == whole.counters
    # a single sample alone gives the same answer as inside the batch
    alone = golden.run_spiking(model, x[3:4, : lengths[3]], lengths[3:4])
    assert np.array_equal(alone.readout[0], whole.readout[3])


def test_block_functions_reproduce_the_network_trace() -> None:
    model = synthetic.random_frozen_spiking(9, input_size=3, hidden_size=4, T=3, nonspiking_gate="i", leak="lif")
    x, lengths = synthetic.random_inputs(model, 2, batch=1, n_max=4, vary_lengths=False)
    tr = golden.run_spiking(model, x, lengths, trace=True).trace[0]
    layer = model.layers[0]
    p = golden.input_projection(layer, x[0])
    assert np.array_equal(tr["p"][0, :, 0], p)
    h_prev = np.zeros((model.T, 4), dtype=np.int64)
    c_prev = np.zeros((model.T, 4), dtype=np.int64)
    for n in range(4):
        membranes = golden.initial_membranes(layer, ())
        for t in range(model.T):
            step = golden.spiking_cell_step(layer, membranes, p[n], h_prev[t], c_prev[t])
            membranes = step.membranes
            for name in ("z", "f", "i", "g", "o", "c", "s_c", "h"):
                assert np.array_equal(getattr(step, name), tr[name][0, n, t]), (name, n, t)
            for name, value in membranes.items():
                assert np.array_equal(value, tr["U_" + name][0, n, t])
        h_prev = tr["h"][0, n].copy()
        c_prev = tr["c"][0, n].copy()


def test_exact_matmul_bound_selection() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-(1 << 15), 1 << 15, size=(300, 7))
    for amax in (1, 1 << 10, 1 << 30):
        a = rng.integers(-amax, amax + 1, size=(5, 300))
        expected = [[sum(int(a[i, k]) * int(w[k, j]) for k in range(300)) for j in range(7)] for i in range(5)]
        assert golden.exact_matmul(a, w).tolist() == expected


def test_input_validation() -> None:
    model = synthetic.random_frozen_spiking(1, input_size=3, hidden_size=4, T=2)
    x, lengths = synthetic.random_inputs(model, 1, batch=2, n_max=3)
    with pytest.raises(UserError):
        golden.run_spiking(model, x[..., :2], lengths)
    with pytest.raises(UserError):
        golden.run_spiking(model, x + 1000, lengths)
    with pytest.raises(UserError):
        golden.run_spiking(model, x, np.array([0, 3]))
    with pytest.raises(UserError):
        golden.run_spiking(model, None, lengths)
    with pytest.raises(UserError):
        golden.run_spiking(model, None, lengths, spikes_in=np.zeros((2, 3, 2, 3), dtype=np.int64))
    rate = synthetic.random_frozen_spiking(1, input_size=3, hidden_size=4, T=2, encoding="rate")
    with pytest.raises(UserError):
        golden.run_spiking(rate, None, None, spikes_in=np.full((1, 3, 2, 3), 2))
    with pytest.raises(UserError):
        golden.run_spiking(rate, None, None, spikes_in=np.zeros((1, 3, 5, 3), dtype=np.int64))
    with pytest.raises(UserError):
        golden.run_spiking(rate, np.zeros((1, 3, 3), dtype=np.int64), None,
                           spikes_in=np.zeros((1, 3, 2, 3), dtype=np.int64))


def test_spike_layer_with_shift_is_rejected() -> None:
    model = synthetic.random_frozen_spiking(1, input_size=3, hidden_size=4, T=2, num_layers=2)
    layer: SpikingLayer = model.layers[1]
    layer.x_shift = (0, 1, 0, 0)
    x, lengths = synthetic.random_inputs(model, 1, batch=1, n_max=2)
    with pytest.raises(ValueError):
        golden.run_spiking(model, x, lengths)


def test_pack_sequences() -> None:
    packed, lengths = golden.pack_sequences([np.ones((2, 3)), np.full((4, 3), 2)])
    assert packed.shape == (2, 4, 3) and lengths.tolist() == [2, 4]
    assert packed[0, 2:].sum() == 0 and packed[1].sum() == 24


def test_rate_encoder_threshold_is_strict() -> None:
    # x_q = r exactly gives no spike (r < |x_q| is false); r + 1 gives a spike with x's sign.
    model = synthetic.random_frozen_spiking(12, input_size=6, hidden_size=2, T=1, encoding="rate")
    top = (1 << model.rate_bits) - 1
    candidates = np.arange(1, 100_000, 997, dtype=np.int64)
    r_all = arith.xorshift32(candidates) >> (32 - model.rate_bits)
    model.lfsr_seeds = candidates[(r_all > 0) & (r_all < top)][:6]
    r = arith.xorshift32(model.lfsr_seeds) >> (32 - model.rate_bits)
    x = np.stack([r, r + 1, -(r + 1)])[:, None, :]
    spikes = golden.rate_encode(model, x)[:, 0, 0]
    assert spikes.tolist() == [[0] * 6, [1] * 6, [-1] * 6]



def test_overlapping_runs_in_two_threads_leave_no_cache_behind(monkeypatch) -> None:
    """Run A starts, run B starts in another thread, A ends, then B ends (the build verifies its
    cores in threads): afterwards no run's weight cache is left active, so a later call outside a
    run builds its own (a cache shared between threads outlived both runs, keyed by ``id`` of
    layers that may be freed, and raised ``TypeError`` when one run ended inside another)."""
    import threading

    model = synthetic.random_frozen_spiking(3, input_size=5, hidden_size=6, T=2)
    x, lengths = synthetic.random_inputs(model, 1, 2, 3)
    expected = golden.run_spiking(model, x, lengths).logits
    entered = {name: threading.Event() for name in "AB"}
    go = {name: threading.Event() for name in "AB"}
    matmul = golden._LayerCache.matmul

    def gated(self, *args, **kwargs):
        name = threading.current_thread().name
        if name in go and not entered[name].is_set():
            entered[name].set()
            assert go[name].wait(10)
        return matmul(self, *args, **kwargs)

    monkeypatch.setattr(golden._LayerCache, "matmul", gated)
    results: dict[str, np.ndarray] = {}
    threads = {name: threading.Thread(name=name, target=lambda n=name: results.__setitem__(
        n, golden.run_spiking(model, x, lengths).logits)) for name in "AB"}
    threads["A"].start()
    assert entered["A"].wait(10)
    threads["B"].start()
    assert entered["B"].wait(10)
    go["A"].set()
    threads["A"].join(10)
    go["B"].set()
    threads["B"].join(10)
    assert np.array_equal(results["A"], expected) and np.array_equal(results["B"], expected)
    layer = model.layers[0]
    assert golden._cache(layer) is not golden._cache(layer)


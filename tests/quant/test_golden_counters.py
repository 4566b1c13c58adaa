"""Operation counters: consistent with the golden trace and with their documented formulas."""

from __future__ import annotations

import json

import numpy as np

from snnhw.quant import golden, synthetic


def _ops(counters: dict, schedule: str) -> dict[tuple[int, str], dict]:
    return {(e["layer"], e["name"]): e for e in counters["schedules"][schedule]["ops"]}


def _active(lengths: np.ndarray, n_max: int) -> np.ndarray:
    return np.arange(n_max)[None, :] < lengths[:, None]


def test_spike_counts_and_sparsity_match_the_trace() -> None:
    model = synthetic.random_frozen_spiking(1, input_size=4, hidden_size=6, T=3, num_layers=2, encoding="rate",
                                            nonspiking_gate="i")
    x, lengths = synthetic.random_inputs(model, 1, batch=7, n_max=8)
    result = golden.run_spiking(model, x, lengths, trace=True, counters=True)
    counters = result.counters
    json.dumps(counters)  # plain JSON-able
    active = _active(lengths, 8)
    cells = int(lengths.sum()) * model.T
    assert counters["sequences"] == 7 and counters["elements"] == int(lengths.sum())
    assert counters["diagonal_steps"] == int((lengths + model.T - 1).sum())
    spikes_in = golden.rate_encode(model, x)
    for index, (layer_counts, tr) in enumerate(zip(counters["layers"], result.trace)):
        assert layer_counts["cells"] == cells
        assert set(layer_counts["spikes"]) == {"f", "g", "o", "s_c", "h"}  # i is the clip gate
        for name, count in layer_counts["spikes"].items():
            assert count == int(np.count_nonzero(tr[name][active])), name
            assert layer_counts["sparsity"][name] == count / (cells * 6)
        h = tr["h"]
        rec_nz = int(np.count_nonzero(h[:, :-1][active[:, 1:]]))
        assert layer_counts["recurrent_nonzero_fraction"] == rec_nz / (cells * 6)
        u = spikes_in if index == 0 else result.trace[0]["h"]
        in_nz = int(np.count_nonzero(u[active]))
        width = 4 if index == 0 else 6
        assert layer_counts["input_nonzero_fraction"] == in_nz / (cells * width)
        dense, event = _ops(counters, "dense"), _ops(counters, "event")
        number = index + 1
        rows = 4 * 6
        assert dense[(number, "recurrent_acc")]["count"] == cells * rows * 6
        assert event[(number, "recurrent_acc")]["count"] == rec_nz * rows
        assert dense[(number, "input_acc")]["count"] == cells * rows * width
        assert event[(number, "input_acc")]["count"] == in_nz * rows
        # event-driven = dense × nonzero fraction, exactly
        assert (event[(number, "recurrent_acc")]["count"] * cells * 6
                == dense[(number, "recurrent_acc")]["count"] * rec_nz)
        # the wavefront reads each weight once per diagonal step, shared by the T engines
        assert (dense[(number, "recurrent_weight_read")]["count"]
                == counters["diagonal_steps"] * rows * 6)
        assert dense[(number, "recurrent_weight_read")]["bits"] == model.weight_bits
        assert event[(number, "recurrent_weight_read")]["count"] == rec_nz * rows
        assert layer_counts["weight_reads_unshared"] == cells * rows * (6 + width)


def test_direct_input_mac_is_once_per_element() -> None:
    model = synthetic.random_frozen_spiking(2, input_size=5, hidden_size=4, T=4, head_hidden=3)
    x, lengths = synthetic.random_inputs(model, 2, batch=6, n_max=7)
    counters = golden.run_spiking(model, x, lengths, counters=True).counters
    elements = int(lengths.sum())
    for schedule in ("dense", "event"):
        ops = _ops(counters, schedule)
        assert ops[(1, "input_mult")]["count"] == elements * 16 * 5
        assert ops[(1, "input_mult")]["bits"] == [model.weight_bits, model.input_bits]
        assert ops[(1, "input_weight_read")]["count"] == elements * 16 * 5
        assert (1, "input_acc") not in ops
        # per-cell neuron work: four binary/ternary neurons + c; saturation checks 2 per update
        assert ops[(1, "f_saturate")]["count"] == elements * model.T * 4 * 2
        assert ops[(1, "c_threshold")]["count"] == elements * model.T * 4 * 2
        assert ops[(1, "g_clip")]["count"] == elements * model.T * 4 * 2
    head = {e["name"]: e["count"] for e in counters["head"]["ops"]}
    assert head["head_hidden_mult"] == 6 * 3 * 4 and head["head_out_mult"] == 6 * 4 * 3
    assert counters["layers"][0]["input_nonzero_fraction"] == (
        np.count_nonzero(x[_active(lengths, 7)]) / (elements * 5))


def test_baseline_counters_formulas() -> None:
    model = synthetic.random_frozen_baseline(3, input_size=5, hidden_size=4, num_layers=2)
    x, lengths = synthetic.random_inputs(model, 3, batch=5, n_max=6)
    counters = golden.run_baseline(model, x, lengths, counters=True).counters
    json.dumps(counters)
    elements = int(lengths.sum())
    ops = _ops(counters, "sequential")
    assert ops[(1, "input_mult")]["count"] == elements * 16 * 5
    assert ops[(2, "input_mult")]["count"] == elements * 16 * 4
    assert ops[(2, "input_mult")]["bits"] == [model.weight_bits, model.act_bits + 1]  # h spans [−Q, Q]
    for layer in (1, 2):
        assert ops[(layer, "recurrent_mult")]["count"] == elements * 16 * 4
        assert ops[(layer, "activation_mult")]["count"] == elements * 16
        assert ops[(layer, "recurrent_weight_read")]["count"] == elements * 16 * 4
    assert counters["layers"][0]["elements"] == elements


def test_counters_do_not_depend_on_chunking() -> None:
    model = synthetic.random_frozen_spiking(4, input_size=3, hidden_size=5, T=2)
    x, lengths = synthetic.random_inputs(model, 4, batch=9, n_max=6)
    a = golden.run_spiking(model, x, lengths, counters=True, chunk=2).counters
    b = golden.run_spiking(model, x, lengths, counters=True).counters
    assert a == b
    assert golden.run_spiking(model, x, lengths).counters is None


def test_per_inference_summary() -> None:
    model = synthetic.random_frozen_spiking(5, input_size=3, hidden_size=4, T=2, encoding="rate")
    x, lengths = synthetic.random_inputs(model, 5, batch=4, n_max=5)
    counters = golden.run_spiking(model, x, lengths, counters=True).counters
    for schedule in ("dense", "event"):
        ops = _ops(counters, schedule)
        summary = counters["schedules"][schedule]["per_inference"]
        acc = ops[(1, "input_acc")]["count"] + ops[(1, "recurrent_acc")]["count"]
        assert summary["accumulations"] == acc / 4
        assert summary["macs"] == 0  # rate input: no multiplier in the spiking layers
        reads = ops[(1, "input_weight_read")]["count"] + ops[(1, "recurrent_weight_read")]["count"]
        assert summary["weight_reads"] == reads / 4
    base = synthetic.random_frozen_baseline(5, input_size=3, hidden_size=4)
    xb, _ = synthetic.random_inputs(base, 5, batch=4, n_max=5)
    summary = golden.run_baseline(base, xb, lengths, counters=True).counters["schedules"]["sequential"]["per_inference"]
    assert summary["macs"] == int(lengths.sum()) * 16 * (3 + 4) / 4
    assert summary["accumulations"] == 0

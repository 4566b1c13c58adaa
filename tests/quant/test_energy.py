"""Energy table (validation, interpolation) and the energy report."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from snnhw.errors import UserError
from snnhw.quant import energy, golden, synthetic


@pytest.fixture()
def table() -> dict:
    return energy.load_energy_table()


def test_default_table_holds_horowitz_figures(table: dict) -> None:
    assert "Horowitz" in table["source"] and "ISSCC 2014" in table["source"]
    assert energy.add_energy(table, 8) == pytest.approx(0.03, abs=1e-15)
    assert energy.add_energy(table, 32) == pytest.approx(0.1, abs=1e-15)
    assert energy.mult_energy(table, 8, 8) == pytest.approx(0.2, abs=1e-15)
    assert energy.mult_energy(table, 32, 32) == pytest.approx(3.1, abs=1e-15)
    assert energy.word_read_energy(table, 8192) == 10.0
    assert energy.word_read_energy(table, 32768) == pytest.approx(20.0, abs=1e-12)
    assert energy.word_read_energy(table, 1 << 20) == pytest.approx(100.0, abs=1e-12)


def test_width_interpolation(table: dict) -> None:
    # add: linear through (0,0), (8, 0.03), (32, 0.1); beyond: last slope
    assert energy.add_energy(table, 4) == pytest.approx(0.015, abs=1e-15)
    assert energy.add_energy(table, 16) == pytest.approx(0.03 + 8 * 0.07 / 24, abs=1e-15)
    assert energy.add_energy(table, 40) == pytest.approx(0.1 + 8 * 0.07 / 24, abs=1e-15)
    # mult: linear in a·b through (64, 0.2), (1024, 3.1)
    assert energy.mult_energy(table, 16, 16) == pytest.approx(0.2 + 192 * 2.9 / 960, abs=1e-15)
    assert energy.mult_energy(table, 4, 16) == pytest.approx(0.2, abs=1e-15)
    assert energy.mult_energy(table, 4, 4) == pytest.approx(0.05, abs=1e-15)
    # read: log-log between 8 KB and 32 KB → geometric mean at 16 KB; clamped outside
    assert energy.word_read_energy(table, 16384) == pytest.approx(math.sqrt(200.0), rel=1e-12)
    assert energy.word_read_energy(table, 100) == 10.0
    assert energy.word_read_energy(table, 1 << 30) == 100.0


def test_op_energy_per_entry(table: dict) -> None:
    assert energy.op_energy(table, {"op": "add", "bits": 8, "count": 10}) == pytest.approx(0.3)
    assert energy.op_energy(table, {"op": "cmp", "bits": 32, "count": 2}) == pytest.approx(0.2)
    assert energy.op_energy(table, {"op": "mult", "bits": [8, 8], "count": 3}) == pytest.approx(0.6)
    assert energy.op_energy(table, {"op": "mux", "bits": 8, "count": 4}) == pytest.approx(4 * 8 * 0.00125)
    read = {"op": "read", "bits": 8, "count": 16, "memory_bytes": 8192}
    assert energy.op_energy(table, read) == pytest.approx(16 * 8 / 64 * 10.0)
    assert energy.op_energy(table, {"op": "reg_write", "bits": 8, "count": 4}) is None


def _counters(ops: list, head: list, sequences: int, schedules=("dense", "event")) -> dict:
    return {"sequences": sequences, "schedules": {name: {"ops": ops} for name in schedules}, "head": {"ops": head}}


def test_energy_report_sums_and_ratio(table: dict) -> None:
    spiking_ops = [
        {"name": "recurrent_acc", "layer": 1, "op": "add", "bits": 8, "count": 200},
        {"name": "recurrent_weight_read", "layer": 1, "op": "read", "bits": 8, "count": 64, "memory_bytes": 8192},
        {"name": "state_read", "layer": 1, "op": "read", "bits": 16, "count": 4, "memory_bytes": 100},
        {"name": "h_register", "layer": 1, "op": "reg_write", "bits": 2, "count": 8},
    ]
    head = [{"name": "head_out_mult", "layer": 0, "op": "mult", "bits": [8, 8], "count": 2}]
    baseline_ops = [{"name": "recurrent_mult", "layer": 1, "op": "mult", "bits": [8, 8], "count": 60}]
    report = energy.energy_report(_counters(spiking_ops, head, 2),
                                  _counters(baseline_ops, head, 2, schedules=("sequential",)), table)
    spk = report["spiking"]["event"]
    assert spk["compute_pj"] == pytest.approx(200 * 0.03 / 2)
    assert spk["head_pj"] == pytest.approx(0.2)
    assert spk["weight_read_pj"] == pytest.approx(64 * 8 / 64 * 10 / 2)
    assert spk["state_read_pj"] == pytest.approx(4 * 16 / 64 * 10 / 2)
    assert spk["unpriced_per_inference"] == {"reg_write": 4.0}
    assert report["spiking_pj"] == pytest.approx(3.0 + 0.2)
    assert report["baseline_pj"] == pytest.approx(60 * 0.2 / 2 + 0.2)
    assert report["ratio"] == pytest.approx(6.2 / 3.2)
    assert report["ratio_with_memory"] == pytest.approx(6.2 / (3.2 + 40 + 5))
    assert report["paper_ratio"]["direct"] == [2.8, 5.1]
    assert report["table_source"] == table["source"]
    json.dumps(report)
    with pytest.raises(UserError):
        energy.energy_report(_counters(spiking_ops, head, 2), None, table, schedule="nope")


def test_energy_report_on_golden_counters(table: dict) -> None:
    model = synthetic.random_frozen_spiking(1, input_size=5, hidden_size=16, T=2)
    base = synthetic.random_frozen_baseline(1, input_size=5, hidden_size=16)
    x, lengths = synthetic.random_inputs(model, 1, batch=4, n_max=12)
    spiking = golden.run_spiking(model, x, lengths, counters=True).counters
    baseline = golden.run_baseline(base, x, lengths, counters=True).counters
    report = energy.energy_report(spiking, baseline, table, schedule="event")
    assert report["spiking"]["event"]["compute_pj"] < report["spiking"]["dense"]["compute_pj"]
    assert report["ratio"] == report["baseline_pj"] / report["spiking_pj"] > 1
    dense = energy.energy_report(spiking, baseline, table)  # the default: dense, as snnhw energy and build
    assert dense["schedule"] == "dense"
    assert dense["spiking_pj"] == report["spiking"]["dense"]["compute_with_head_pj"]
    alone = energy.energy_report(spiking, schedule="event")
    assert alone["ratio"] is None and alone["spiking_pj"] == report["spiking_pj"]


def _write(tmp_path: Path, table) -> Path:
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table))
    return path


def test_user_table_round_trip_and_validation(tmp_path: Path, table: dict) -> None:
    custom = copy.deepcopy(table)
    custom["add"]["points"] = [[8, 0.06], [32, 0.2]]
    loaded = energy.load_energy_table(_write(tmp_path, custom))
    assert energy.add_energy(loaded, 8) == pytest.approx(0.06)

    def broken(mutate) -> dict:
        bad = copy.deepcopy(table)
        mutate(bad)
        return bad

    cases = [
        broken(lambda t: t.pop("source")),
        broken(lambda t: t.update(format="other")),
        broken(lambda t: t.update(unit="nJ")),
        broken(lambda t: t["add"].update(points=[[32, 0.1], [8, 0.03]])),
        broken(lambda t: t["mult"].update(points=[[8, -0.2]])),
        broken(lambda t: t["mult"].update(points=[[8, "x"]])),
        broken(lambda t: t["read"].update(points=[])),
        broken(lambda t: t["read"].pop("word_bits")),
        broken(lambda t: t["mux"].update(per_bit=-1)),
        broken(lambda t: t.update(cmp={"as": "mult"})),
        [1, 2, 3],
    ]
    for bad in cases:
        with pytest.raises(UserError):
            energy.load_energy_table(_write(tmp_path, bad))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError):
        energy.load_energy_table(tmp_path / "bad.json")
    with pytest.raises(UserError):
        energy.load_energy_table(tmp_path / "missing.json")


def test_schedule_weight_reads_replace_the_counters_synapse_reads(table: dict) -> None:
    """A hardware schedule's weight reads replace the counters' synapse weight reads of a layer,
    priced at the layer's whole weight memory; the projection's reads and the rest stay."""
    model = synthetic.random_frozen_spiking(2, input_size=3, hidden_size=4, T=2, encoding="direct")
    x, lengths = synthetic.random_inputs(model, 2, 2, 4, vary_lengths=False)
    counters = golden.run_spiking(model, x, lengths, counters=True).counters
    ops = counters["schedules"]["event"]["ops"]
    replaced = energy.with_weight_reads(ops, {1: 1000})
    names = [e["name"] for e in replaced]
    assert names.count("synapse_weight_read") == 1 and "recurrent_weight_read" not in names
    assert "input_weight_read" in names  # the direct-input projection keeps its own reads
    entry = next(e for e in replaced if e["name"] == "synapse_weight_read")
    rec = next(e for e in ops if e["name"] == "recurrent_weight_read")
    assert (entry["count"], entry["memory_bytes"]) == (1000, rec["memory_bytes"])
    base = energy.schedule_energy(counters, "event", table)
    more = energy.schedule_energy(counters, "event", table, weight_reads={1: 2 * rec["count"]})
    extra = rec["count"] * rec["bits"] / table["read"]["word_bits"] * energy.word_read_energy(table, rec["memory_bytes"])
    assert more["weight_read_pj"] - base["weight_read_pj"] == pytest.approx(extra / counters["sequences"])
    assert more["compute_with_head_pj"] == base["compute_with_head_pj"]
    with pytest.raises(ValueError):
        energy.with_weight_reads(ops, {2: 5})

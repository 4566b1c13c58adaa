"""Sequences verified per configuration by the cocotb regression, read from its parameter lists.

Usage (from the repository root)::

    /work/venv/bin/python bench/regression_table.py

Imports the configuration lists of ``tests/sim`` (``test_cocotb_spiking.CASES`` and
``DEBUG_CASES``, ``test_cocotb_baseline.CASES``) and prints a markdown table: per
configuration the model shape, the knobs, the batch (sequences, longest N), the run modes,
the sequence runs (sequences × modes), whether it runs by default or only with ``--runslow``,
and its default seed; then the totals of the default run and of ``--runslow``. Nothing is
simulated. The sequence lengths are those ``simfixtures.batch_inputs`` draws with the default
seed (the first sequence has N = n_max, the last N = 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "sim"), str(REPO / "tests")]

import test_cocotb_baseline  # noqa: E402
import test_cocotb_spiking  # noqa: E402
from simfixtures import batch_inputs  # noqa: E402

from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking  # noqa: E402
from snnhw.sim.stimulus import default_modes, regression_modes  # noqa: E402


def knob_text(knobs, spiking: bool) -> str:  # type: ignore[no-untyped-def]
    """Lanes, fanin, engines (spiking; E=T by default), the non-default switches and pipeline stages
    of a ``Knobs``."""
    parts = [f"L{knobs.lanes} F{knobs.fanin}"]
    if spiking:
        parts.append(f"E{knobs.engines}" if knobs.engines else "E=T")
    for name in ("event_driven", "head_in_hw", "trace"):
        if getattr(knobs, name, False):
            parts.append(name.replace("_", "-"))
    if getattr(knobs, "event_mode", "engine") != "engine":
        parts.append(f"event_mode={knobs.event_mode}")
    if getattr(knobs, "input_mode", None):
        parts.append(f"input={knobs.input_mode}")
    for name in ("bank_readers", "tree_stages", "gate_stages", "cell_stages", "mac_stages", "act_stages"):
        if getattr(knobs, name, 1) != 1:
            parts.append(f"{name}={getattr(knobs, name)}")
    return ", ".join(parts)


def shape_text(model: dict) -> str:
    """Model arguments as D/H/T/layers plus the other ``random_frozen_*`` arguments."""
    d, h = model["input_size"], model["hidden_size"]
    text = f"D{d} H{h}" + (f" T{model['T']}" if "T" in model else "") + f" layers={model.get('num_layers', 1)}"
    rest = {k: v for k, v in model.items() if k not in ("input_size", "hidden_size", "T", "num_layers")}
    return text + "".join(f" {k}={v}" for k, v in rest.items())


def rows() -> list[dict]:
    """One row per configuration of the regression's parameter lists."""
    out = []
    lists = [("spiking", test_cocotb_spiking.CASES, random_frozen_spiking),
             ("spiking debug", test_cocotb_spiking.DEBUG_CASES, random_frozen_spiking),
             ("baseline", test_cocotb_baseline.CASES, random_frozen_baseline)]
    for core, cases, make in lists:
        for case in cases:
            model = make(case.seed, **case.model)
            spikes = getattr(case.knobs, "input_mode", None) == "spikes"
            _, lengths = batch_inputs(model, case.seed, case.batch, case.n_max, spikes=spikes)
            modes = len(regression_modes(case.seed) if getattr(case, "slow_sink", True) else default_modes(case.seed))
            slow = any(getattr(m, "name", "") == "slow" for m in case.marks)
            out.append({"core": core, "id": case.name, "shape": shape_text(case.model),
                        "knobs": knob_text(case.knobs, core.startswith("spiking")), "sequences": case.batch,
                        "n": lengths.tolist(), "modes": modes, "runs": case.batch * modes, "slow": slow,
                        "seed": case.seed})
    return out


def main() -> int:
    table = rows()
    print("| core | id | model | knobs | sequences | N per sequence (default seed) | modes | sequence runs | run "
          "| seed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['core']} | {r['id']} | {r['shape']} | {r['knobs']} | {r['sequences']} | "
              f"{', '.join(map(str, r['n']))} | {r['modes']} | {r['runs']} | "
              f"{'--runslow' if r['slow'] else 'default'} | {r['seed']} |")
    default = [r for r in table if not r["slow"]]
    print()
    for label, chosen in (("default run", default), ("with --runslow", table)):
        print(f"{label}: {len(chosen)} configurations, {sum(r['sequences'] for r in chosen)} sequences, "
              f"{sum(sum(r['n']) for r in chosen)} elements, {sum(r['runs'] for r in chosen)} sequence runs "
              f"(sequences × modes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Helpers shared by the cocotb regression's test modules (imported as ``simfixtures``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seeding import record_seed, run_seed

HERE = Path(__file__).resolve().parent


def seed_for(request: pytest.FixtureRequest, default: int) -> int:
    """The seed of a configuration: the run seed (``--seed N`` / ``--seed random`` /
    ``$SNNHW_SEED``, see ``tests/seeding.py``) when set, else ``default``.

    Printed, and recorded on the requesting test or fixture so that every report of a test
    that used it carries a ``seed`` section with the replay command (``--seed <seed>``).
    """
    run = run_seed(request.config)
    seed = default if run is None else run
    record_seed(request, seed)
    print(f"seed={seed} (replay: --seed {seed})")
    return seed


def generate_core(model, knobs, out_dir: Path):
    """Build the core object and its Verilog via ``snnhw.hw.generate`` (the product path;
    a direct Amaranth conversion for knobs ``generate`` does not take, e.g. ``event_mode``).

    Returns (core, verilog path). A knob the core rejects raises ``UserError`` (tests turn it
    into a skip with the reason).
    """
    from snnhw.hw.generate import generate
    from snnhw.quant.frozen import FrozenSpiking
    from snnhw.sim.verify import build_core

    core = build_core(model, knobs)
    spiking = isinstance(model, FrozenSpiking)
    if spiking and knobs.event_mode != "engine":
        # generate() does not take event_mode: convert this core as generate() would
        from amaranth.back import verilog

        from snnhw.hw.generate import SPIKING_FILE, SPIKING_TOP

        core._MustUse__silence = False
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / SPIKING_FILE
        path.write_text(verilog.convert(core, name=SPIKING_TOP, emit_src=False))
        return core, path
    summary = generate(model if spiking else None, None if spiking else model, out_dir, lanes=knobs.lanes,
                       fanin=knobs.fanin, engines=knobs.engines, event_driven=knobs.event_driven,
                       input_mode=knobs.input_mode, head_in_hw=knobs.head_in_hw, trace=knobs.trace)
    return core, Path(summary["cores"]["spiking" if spiking else "baseline"]["verilog"])


def batch_inputs(model, seed: int, batch: int, n_max: int, spikes: bool = False):
    """Random inputs with varied lengths; the last sample has N = 1 (when batch > 1)."""
    from snnhw.quant.synthetic import random_inputs

    x, lengths = random_inputs(model, seed, batch, n_max, vary_lengths=True, spikes=spikes)
    if batch > 1:
        lengths[-1] = 1
        x[-1, 1:] = 0
    return x, lengths

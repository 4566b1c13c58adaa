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
    """Generate the core of ``model`` with ``knobs`` through ``snnhw.hw.generate`` (the product path).

    The regression's convention: a spiking configuration that leaves ``engines`` open runs one
    engine per time step (E = T), the widest wavefront. Returns (schedule, verilog path). A knob
    the core rejects raises ``ValueError`` (tests turn it into a skip with the reason).
    """
    from snnhw.hw.generate import generate
    from snnhw.hw.registry import spec_for_model

    spec = spec_for_model(model)
    if getattr(knobs, "engines", 0) is None:
        knobs = knobs.replace(engines=model.T)
    summary = generate([(model, knobs)], out_dir)
    return spec.schedule_of(model, knobs), Path(summary["cores"][spec.name]["verilog"])


def batch_inputs(model, seed: int, batch: int, n_max: int, spikes: bool = False, directed: bool = True):
    """Inputs with varied lengths (the first of length ``n_max``); the last sample has N = 1
    (when batch > 1).

    ``directed`` (the regression's default): chosen from 16 × ``batch`` random sequences to
    cover the most golden events — membranes near a threshold, −1 spikes into the recurrence,
    readout terms of every unit, activations next to a clip bound
    (:func:`snnhw.sim.coverage.directed_inputs`); else plain random sequences.
    """
    from snnhw.sim.coverage import directed_inputs
    from snnhw.quant.synthetic import random_inputs

    if directed:
        x, lengths, _ = directed_inputs(model, seed, batch, n_max, spikes=spikes)
    else:
        x, lengths = random_inputs(model, seed, batch, n_max, vary_lengths=True, spikes=spikes)
    if batch > 1:
        lengths[-1] = 1
        x[-1, 1:] = 0
    return x, lengths

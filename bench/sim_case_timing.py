"""Wall time of one cocotb regression case at a chosen size and knobs (generation and simulation).

Usage (from the repository root; run it alone, under ``nice -n 10``)::

    nice -n 10 /work/venv/bin/python bench/sim_case_timing.py --core spiking --input-size 20 --hidden 128
        --T 4 --lanes 2 --fanin 16 --batch 2 --n-max 3 --seed 114 [--sim icarus] [--out DIR]

Builds the case exactly as ``tests/sim`` does (``synthetic.random_frozen_*`` from the seed,
``simfixtures.generate_core``, ``simfixtures.batch_inputs``, ``default_modes(seed)``: isolated
with exact cycles, then stalls), verifies it, and prints one line: pass/fail, the sequence
lengths, the generation wall time (s), the simulation wall time (s, build + both modes), and per
mode the simulated clock cycles (resets included), the testbench wall time (s) and the wall time
per cycle (ms). Used to choose the knobs of the default-run ``realistic-H128-D20-T4`` case.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "sim"), str(REPO / "tests")]

from simfixtures import batch_inputs, generate_core  # noqa: E402

from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking  # noqa: E402
from snnhw.sim.runner import simulate  # noqa: E402
from snnhw.sim.stimulus import build_stimulus, default_modes  # noqa: E402
from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--core", choices=("spiking", "baseline"), default="spiking")
    ap.add_argument("--input-size", type=int, default=20, help="D")
    ap.add_argument("--hidden", type=int, default=128, help="H")
    ap.add_argument("--T", type=int, default=4, help="time steps (spiking)")
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--fanin", type=int, default=8)
    ap.add_argument("--engines", type=int, default=None)
    ap.add_argument("--batch", type=int, default=2, help="sequences")
    ap.add_argument("--n-max", type=int, default=3, help="longest N (the first sequence's)")
    ap.add_argument("--seed", type=int, default=114)
    ap.add_argument("--sim", choices=("icarus", "verilator"), default="icarus")
    ap.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        t0 = time.perf_counter()
        if args.core == "spiking":
            model = random_frozen_spiking(args.seed, input_size=args.input_size, hidden_size=args.hidden, T=args.T)
        else:
            model = random_frozen_baseline(args.seed, input_size=args.input_size, hidden_size=args.hidden)
        knobs = (SpikingKnobs(lanes=args.lanes, fanin=args.fanin, engines=args.engines) if args.core == "spiking"
                 else BaselineKnobs(lanes=args.lanes, fanin=args.fanin))
        schedule, verilog = generate_core(model, knobs, root / "rtl")
        t1 = time.perf_counter()
        x, lengths = batch_inputs(model, args.seed, args.batch, args.n_max)
        stim = build_stimulus(model, schedule, x, lengths, modes=default_modes(args.seed))
        run = simulate(stim, [verilog], root / "run", sim=args.sim)
        t2 = time.perf_counter()
    modes = "; ".join(f"{m['name']}: {m['sim_cycles']} cycles, {m['wall_s']:.2f} s, "
                      f"{1e3 * m['wall_s'] / m['sim_cycles']:.2f} ms/cycle" for m in run.report.get("modes", []))
    engines = "" if args.engines is None else f" E{args.engines}"
    print(f"{args.core} D{args.input_size} H{args.hidden} T{args.T} L{args.lanes} F{args.fanin}{engines} "
          f"{args.sim}: {'PASS' if run.passed else 'FAIL'} N={lengths.tolist()} generate {t1 - t0:.1f} s, "
          f"simulate {t2 - t1:.1f} s ({modes})")
    return 0 if run.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

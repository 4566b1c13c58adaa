# amaranth: UnusedElaboratable=no
"""Hardware cycles, utilisation and Verilog generation time of the spiking and MAC baseline cores.

Usage (from the repository root)::

    nice -n 10 python bench/hw_cycles.py [--hidden 128] [--T 4] [--pairs 28:28 81:20 128:9]
        [--knobs 8,8,4 16,16,4 8,8,2 32,8,4 32,2,4 8,8,4,8 16,16,4,16] [--encodings direct rate]
        [--sequences 2] [--generate] [--generate-knobs 8,8,4 ...] [--generate-event-driven]
        [--generate-input-size 9] [--rtl-dir DIR]
        [--out runs/hw_cycles.json]

Models. Random frozen one-layer models (``snnhw.quant.synthetic``: ``random_frozen_spiking``
with ``encoding`` "direct" or "rate", ``random_frozen_baseline``), H = ``--hidden``, T = ``--T``,
model seed ``--seed``. Each sequence length N is paired with the input width D of the dataset
it stands for (``--pairs N:D``): N = 28 with D = 28 (T-MNIST-like rows), N = 81 with D = 20
(speech-like frames), N = 128 with D = 9 (HAR-like windows). ``--input-size D`` uses one D for
every N instead.

Knobs. ``L,F,E[,PF]``: lanes, fanin, engines and (optional, default 1) the spiking core's
direct-input projection fan-in ``proj_fanin`` (``SpikingCore`` only: ``generate`` and the CLI
do not expose it; spike input ignores it, so rate rows are deduplicated). The baseline core
uses the same lanes and fanin (4·L·F MAC units, as each spiking engine has 4·L·F adders).

Per (encoding, N, knobs) the benchmark reports, from the cores' own cycle formulas
(``WavefrontSchedule.cycles``, ``BaselineSchedule.cycles`` of :mod:`snnhw.hw.schedule`; both checked exactly in RTL simulation by the
hardware tests):

* spiking, dense: ``schedule.cycles(N)``;
* spiking, event-driven (``event_mode`` "engine" and "shared"): ``schedule.cycles(N,
  schedule.event_chunk_counts(u, hs))`` with the spikes of the golden model's trace
  (``golden.run_spiking(..., trace=True)``) on ``--sequences`` random input sequences of
  length N (``synthetic.random_inputs``, input seed ``--input-seed``); u = None for direct
  input, ``golden.rate_encode`` of the rate input for rate encoding; mean, min and max;
* baseline: ``BaselineSchedule.cycles(N)`` (one MAC engine, sequential over n);
* serial T·N reference (the schedule of earlier spiking LSTMs, Ponghiran & Roy 2021, which
  process the T time steps of an element one after another before the next element): the
  spiking core's own datapath, same knobs, same pipeline drain, same projection overlap and
  the same fixed costs, but one cell (n, t) per step, T·N steps in the order
  (0,0), (0,1), …, (0,T−1), (1,0), …. Two variants:

  - ``serial`` — one engine busy per step: a step costs one pass of the core's step,
    ``B_cell = G·C`` beats (G = ⌈H/L⌉ unit groups, C synapse chunks); for E = T this is
    exactly the core's per-step beat count B = ⌈T/E⌉·G·C;
  - ``serial (all adders)`` — the core's E·4·L·F adders all work on the one cell (its H
    units split over the E engines): ``G' = ⌈H/(E·L)⌉`` groups, ``B_cell = G'·C`` beats.

  Each step adds the 4-cycle pipeline drain; event-driven: a cell's step costs
  ``groups·max(1, nz(n,t))`` beats, nz(n,t) the cell's chunks holding a nonzero spike (from
  ``event_chunk_counts`` of a one-engine core, whose slot t of step k is cell (k−t, t)).
  ``serial(N) = Σ_cells (B_cell + 4) + Σ_{n<N−1} max(0, X + 1 − Σ_t (B_cell(n,t) + 4)) + X + W + 3``,
  the spiking formula with the K diagonal steps replaced by the T·N cell steps.

Utilisation (``docs/hw-spiking-core.md``, "Ideal bound and utilisation"): spiking ``core.utilisation(u, hs, cycles)`` = useful
accumulations (``schedule.useful_work``: 4·H per nonzero synapse input of every cell;
the direct-input projection is a MAC and not counted) / (adders × cycles); baseline: MACs
needed N·4·H·(D + H) / (4·L·F MAC units × cycles); serial: the spiking useful accumulations /
(the same core's adders × serial cycles).

``--generate``: times ``snnhw.hw.generate.generate``, one call per core and knob setting, for the
spiking core (direct model; dense, and event-driven with ``--generate-event-driven``) and the
baseline core at H = ``--hidden``, D = ``--generate-input-size``, knobs ``--generate-knobs``
(wall and process-CPU seconds of the whole call, and the conversion seconds ``generate``
reports) and records the Verilog size; the Verilog goes to a temporary directory
(deleted) unless ``--rtl-dir`` is given.

Prints Markdown tables and writes the JSON (``--out``). Nothing here is a test: every figure is
computed in the run; the paper's latency ratios (~4× vs the non-spiking LSTM, 25.9–105.7× vs
the earlier spiking LSTM, Fig. 4(b)) are printed beside ours for orientation only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from math import ceil
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs
from snnhw.hw.registry import core_spec
from snnhw.hw.schedule import PIPELINE_DRAIN, WavefrontSchedule
from snnhw.quant import golden
from snnhw.quant.frozen import FrozenSpiking
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking, random_inputs

PAPER_RATIOS = {"vs non-spiking LSTM": "~4×", "vs earlier spiking LSTM (T'·N serial)": "25.9–105.7×"}
"""The paper's latency reductions (Fig. 4(b), FPGA, its own models and datasets)."""

SPIKING, BASELINE = core_spec("spiking"), core_spec("baseline")


def parse_knobs(text: str) -> tuple[int, int, int, int]:
    """``"L,F,E[,PF]"`` → (lanes, fanin, engines, proj_fanin)."""
    parts = [int(p) for p in text.split(",")]
    if len(parts) not in (3, 4) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"knobs must be L,F,E or L,F,E,PF positive integers, not {text!r}")
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else 1)


def parse_pair(text: str) -> tuple[int, int]:
    """``"N:D"`` → (N, D)."""
    try:
        n, d = (int(p) for p in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a pair is N:D, not {text!r}") from None
    if n < 1 or d < 1:
        raise argparse.ArgumentTypeError(f"N and D must be positive, not {text!r}")
    return n, d


def knob_label(knobs: tuple[int, int, int, int]) -> str:
    """``L,F,E`` (``,PF`` when the projection fan-in is not 1)."""
    return ",".join(str(k) for k in (knobs if knobs[3] != 1 else knobs[:3]))


def serial_cycles(core: WavefrontSchedule, N: int, cell_nz: np.ndarray | None, all_adders: bool) -> int:
    """Cycles of the serial T·N schedule on ``core``'s hardware (module docstring).

    Args:
        core: a one-layer spiking core's schedule (knobs, projection latency X, output words W, head Y).
        N: elements.
        cell_nz: int [N, T] nonzero chunks of each cell (event-driven) or None (dense).
        all_adders: split each cell's H units over all E engines (else one engine works).
    """
    if core.num_layers != 1:
        raise ValueError("the serial reference is defined for one-layer models")
    lanes = core.lanes * (core.engines if all_adders else 1)
    groups = ceil(core.layers[0].hidden / lanes)
    chunks = core.layers[0].chunks
    if cell_nz is None:
        cost = np.full((N, core.T), groups * chunks + PIPELINE_DRAIN, dtype=np.int64)
    else:
        cost = groups * np.maximum(1, cell_nz) + PIPELINE_DRAIN
    X = core.proj_latency
    per_element = cost.sum(axis=1)
    waits = int(np.maximum(0, X + 1 - per_element[:N - 1]).sum())
    return int(cost.sum()) + waits + X + core.out_words + 3 + core.head_latency


def cell_chunk_counts(model: FrozenSpiking, input_mode: str, fanin: int, u: np.ndarray | None,
                      hs: list[np.ndarray]) -> np.ndarray:
    """nz(n, t), the chunks of fan-in ``fanin`` of cell (n, t) holding a nonzero spike, int [N, T].

    From ``event_chunk_counts`` of a one-engine event-driven core (lanes do not affect the
    chunks): its step k, pass t holds the cell (k − t, t).
    """
    probe = SPIKING.schedule_of(model, SpikingKnobs(lanes=1, fanin=fanin, engines=1, event_driven=True,
                                                    input_mode=input_mode))
    counts = probe.event_chunk_counts(u, hs)
    N, T = hs[0].shape[:2]
    out = np.zeros((N, T), dtype=np.int64)
    for n in range(N):
        for t in range(T):
            out[n, t] = counts[n + t][0][0][t]
    return out


def golden_trace(model: FrozenSpiking, encoding: str, N: int, sequences: int, seed: int
                 ) -> tuple[list[np.ndarray | None], list[list[np.ndarray]], float]:
    """Layer-1 spikes u (None for direct input) and the h spikes per layer of ``sequences`` random
    length-N sequences, and the mean h spike rate (nonzero fraction)."""
    x, lengths = random_inputs(model, seed, sequences, N, vary_lengths=False)
    ref = golden.run_spiking(model, x, lengths, trace=True)
    us: list[np.ndarray | None] = []
    hs: list[list[np.ndarray]] = []
    u_all = golden.rate_encode(model, x) if encoding == "rate" else None
    for b in range(sequences):
        us.append(None if u_all is None else u_all[b])
        hs.append([ref.trace[l]["h"][b] for l in range(len(model.layers))])
    rate = float(np.mean([np.count_nonzero(h[0]) / h[0].size for h in hs]))
    return us, hs, rate


def stats(values: list[float]) -> dict[str, float]:
    """Mean, min and max."""
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (encoding, N, knobs) row: cycles, ratios and utilisations."""
    rows = []
    pairs = [(n, args.input_size) for n, _ in args.pairs] if args.input_size else args.pairs
    jobs = [(enc, n, d) for enc in args.encodings for n, d in pairs]
    for enc, N, D in tqdm(jobs, desc="encoding × N", file=sys.stderr):
        smodel = random_frozen_spiking(args.seed, input_size=D, hidden_size=args.hidden, T=args.T, encoding=enc,
                                       num_classes=args.classes)
        bmodel = random_frozen_baseline(args.seed, input_size=D, hidden_size=args.hidden, num_classes=args.classes)
        us, hs, h_rate = golden_trace(smodel, enc, N, args.sequences, args.input_seed)
        settings = args.knobs if enc == "direct" else list(dict.fromkeys(k[:3] + (1,) for k in args.knobs))
        for knobs in settings:
            L, F, E, PF = knobs
            common = dict(lanes=L, fanin=F, engines=E, input_mode=enc, proj_fanin=PF)
            dense = SPIKING.schedule_of(smodel, SpikingKnobs(**common))
            base = BASELINE.schedule_of(bmodel, BaselineKnobs(lanes=L, fanin=F))
            useful = [dense.useful_work(u, h) for u, h in zip(us, hs)]
            row: dict[str, Any] = {
                "encoding": enc, "N": N, "D": D, "H": args.hidden, "T": args.T,
                "knobs": {"lanes": L, "fanin": F, "engines": E, "proj_fanin": PF},
                "h_spike_rate": h_rate, "adders": dense.units, "proj_latency": dense.proj_latency,
                "dense_beats_per_step": dense.beats(0),
                "useful_accumulations": stats(useful),
            }
            c_dense = dense.cycles(N)
            row["spiking_dense"] = {"cycles": c_dense,
                                    "utilisation": stats([a / (dense.units * c_dense) for a in useful])}
            for mode in ("engine", "shared"):
                ev = SPIKING.schedule_of(smodel, SpikingKnobs(event_driven=True, event_mode=mode, **common))
                cyc = [ev.cycles(N, ev.event_chunk_counts(u, h)) for u, h in zip(us, hs)]
                row[f"spiking_event_{mode}"] = {
                    "cycles": stats(cyc),
                    "utilisation": stats([ev.utilisation(u, h, c) for u, h, c in zip(us, hs, cyc)]),
                    "weight_reads_per_cycle": len(ev.issue_groups()),
                }
            c_base = base.cycles(N)
            mac_units = base.units
            macs = base.useful_work(N)
            row["baseline"] = {"cycles": c_base, "mac_units": mac_units, "macs_needed": macs,
                               "utilisation": macs / (mac_units * c_base), "cycle_formula": base.formula()}
            nz = [cell_chunk_counts(smodel, enc, F, u, h) for u, h in zip(us, hs)]
            for key, wide in (("serial", False), ("serial_all_adders", True)):
                s_dense = serial_cycles(dense, N, None, wide)
                s_ev = [serial_cycles(dense, N, z, wide) for z in nz]
                row[key] = {
                    "dense": {"cycles": s_dense,
                              "utilisation": stats([a / (dense.units * s_dense) for a in useful])},
                    "event": {"cycles": stats(s_ev),
                              "utilisation": stats([a / (dense.units * c) for a, c in zip(useful, s_ev)])},
                }
            ev_e = row["spiking_event_engine"]["cycles"]["mean"]
            row["ratios"] = {
                "baseline_over_spiking_dense": c_base / c_dense,
                "baseline_over_spiking_event": c_base / ev_e,
                "serial_over_spiking_dense": row["serial"]["dense"]["cycles"] / c_dense,
                "serial_over_spiking_event": row["serial"]["event"]["cycles"]["mean"] / ev_e,
                "serial_all_adders_over_spiking_dense": row["serial_all_adders"]["dense"]["cycles"] / c_dense,
                "serial_all_adders_over_spiking_event": row["serial_all_adders"]["event"]["cycles"]["mean"] / ev_e,
            }
            rows.append(row)
    return rows


def time_generation(args: argparse.Namespace) -> dict[str, Any]:
    """Wall / CPU seconds of ``generate`` for each core and knob setting separately, and the Verilog sizes.

    Per knob setting: the spiking core (dense, and event-driven when ``--generate-event-driven``)
    and the baseline core (once per distinct lanes, fanin), each in its own ``generate`` call.
    """
    from snnhw.hw.generate import generate

    D = args.generate_input_size
    smodel = random_frozen_spiking(args.seed, input_size=D, hidden_size=args.hidden, T=args.T, num_classes=args.classes)
    bmodel = random_frozen_baseline(args.seed, input_size=D, hidden_size=args.hidden, num_classes=args.classes)
    jobs: list[tuple[str, int, int, int | None, bool]] = []
    for L, F, E, _ in args.generate_knobs:
        jobs.append(("spiking", L, F, E, False))
        if args.generate_event_driven:
            jobs.append(("spiking", L, F, E, True))
        if ("baseline", L, F, None, False) not in jobs:
            jobs.append(("baseline", L, F, None, False))
    result: dict[str, Any] = {"H": args.hidden, "T": args.T, "D": D, "encoding": "direct", "runs": []}
    with tempfile.TemporaryDirectory(prefix="hw_cycles_rtl_") as tmp:
        root = Path(args.rtl_dir) if args.rtl_dir else Path(tmp)
        for index, (kind, L, F, E, event) in enumerate(tqdm(jobs, desc="generate", file=sys.stderr)):
            out = root / f"{index:02d}_{kind}_{L}_{F}_{E or 0}{'_event' if event else ''}"
            load = os.getloadavg()[0]
            wall0, cpu0 = time.perf_counter(), time.process_time()
            knobs = (SpikingKnobs(lanes=L, fanin=F, engines=E, event_driven=event) if kind == "spiking"
                     else BaselineKnobs(lanes=L, fanin=F))
            summary = generate([(smodel if kind == "spiking" else bmodel, knobs)], out)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            core = summary["cores"][kind]
            result["runs"].append({"core": kind, "lanes": L, "fanin": F, "engines": E, "event_driven": event,
                                   "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "convert_s": core["seconds"],
                                   "verilog_bytes": core["verilog_bytes"], "loadavg_1min_before": load,
                                   "under_60s_wall": wall < 60.0})
    return result


def _fmt_stats(s: dict[str, float], digits: int = 0) -> str:
    """``mean (min–max)``; just the value when all three agree."""
    f = f"{{:.{digits}f}}"
    if s["min"] == s["max"]:
        return f.format(s["mean"])
    return f"{f.format(s['mean'])} ({f.format(s['min'])}–{f.format(s['max'])})"


def print_tables(rows: list[dict[str, Any]], gen: dict[str, Any] | None, meta: dict[str, Any]) -> None:
    """Markdown tables of the rows and the generation timing."""
    print(f"H = {meta['hidden']}, T = {meta['T']}, one layer, {meta['sequences']} random sequences per N "
          f"(event-driven figures: mean (min–max)); load average {meta['loadavg_1min_start']:.2f} at start")
    for enc in dict.fromkeys(r["encoding"] for r in rows):
        sel = [r for r in rows if r["encoding"] == enc]
        print(f"\n### Cycles per sequence, {enc} input\n")
        print("| L,F,E | N (D) | h rate | spiking dense | spiking event (engine) | spiking event (shared) | "
              "baseline | serial T·N dense | serial T·N event | serial all-adders dense | base/spk dense | "
              "base/spk event | serial/spk dense | serial/spk event | serial-all/spk dense |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sel:
            q = r["ratios"]
            print(f"| {knob_label(tuple(r['knobs'].values()))} | {r['N']} ({r['D']}) | {r['h_spike_rate']:.3f} | "
                  f"{r['spiking_dense']['cycles']} | {_fmt_stats(r['spiking_event_engine']['cycles'])} | "
                  f"{_fmt_stats(r['spiking_event_shared']['cycles'])} | {r['baseline']['cycles']} | "
                  f"{r['serial']['dense']['cycles']} | {_fmt_stats(r['serial']['event']['cycles'])} | "
                  f"{r['serial_all_adders']['dense']['cycles']} | "
                  f"{q['baseline_over_spiking_dense']:.2f}× | {q['baseline_over_spiking_event']:.2f}× | "
                  f"{q['serial_over_spiking_dense']:.2f}× | {q['serial_over_spiking_event']:.2f}× | "
                  f"{q['serial_all_adders_over_spiking_dense']:.2f}× |")
        print(f"\n### Utilisation = useful work / (parallel units × cycles), {enc} input\n")
        print("| L,F,E | N (D) | adders (MAC units) | spiking dense | spiking event (engine) | "
              "spiking event (shared) | serial T·N dense | serial T·N event | baseline |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in sel:
            print(f"| {knob_label(tuple(r['knobs'].values()))} | {r['N']} ({r['D']}) | "
                  f"{r['adders']} ({r['baseline']['mac_units']}) | "
                  f"{_fmt_stats(r['spiking_dense']['utilisation'], 3)} | "
                  f"{_fmt_stats(r['spiking_event_engine']['utilisation'], 3)} | "
                  f"{_fmt_stats(r['spiking_event_shared']['utilisation'], 3)} | "
                  f"{_fmt_stats(r['serial']['dense']['utilisation'], 3)} | "
                  f"{_fmt_stats(r['serial']['event']['utilisation'], 3)} | {r['baseline']['utilisation']:.3f} |")
    print("\nPaper (Fig. 4(b), its FPGA designs, time not cycles): "
          + "; ".join(f"{k}: {v}" for k, v in PAPER_RATIOS.items()))
    if gen is not None:
        print(f"\n### Verilog generation (one `generate` call per row), H = {gen['H']}, D = {gen['D']}, "
              f"T = {gen['T']}, direct input\n")
        print("| core | L,F,E | event-driven | wall s | CPU s | convert s | Verilog MB | load avg before | "
              "under 60 s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for c in gen["runs"]:
            knobs = f"{c['lanes']},{c['fanin']}" + (f",{c['engines']}" if c["engines"] else "")
            print(f"| {c['core']} | {knobs} | {'yes' if c['event_driven'] else 'no'} | {c['wall_s']:.1f} | "
                  f"{c['cpu_s']:.1f} | {c['convert_s']:.1f} | {c['verilog_bytes'] / 1e6:.2f} | "
                  f"{c['loadavg_1min_before']:.2f} | {'yes' if c['under_60s_wall'] else 'no'} |")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print Markdown tables, write the JSON (``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128, help="hidden size H")
    parser.add_argument("--T", type=int, default=4, help="time steps per element")
    parser.add_argument("--pairs", type=parse_pair, nargs="+", default=[(28, 28), (81, 20), (128, 9)],
                        help="sequence length and input width N:D")
    parser.add_argument("--input-size", type=int, default=None,
                        help="one input width D for every N (overrides --pairs' D)")
    parser.add_argument("--knobs", type=parse_knobs, nargs="+",
                        default=[(8, 8, 4, 1), (16, 16, 4, 1), (8, 8, 2, 1), (32, 8, 4, 1), (32, 2, 4, 1),
                                 (8, 8, 4, 8), (16, 16, 4, 16)],
                        help="L,F,E[,PF]: lanes, fanin, engines[, projection fan-in]")
    parser.add_argument("--encodings", nargs="+", choices=("direct", "rate"), default=["direct", "rate"])
    parser.add_argument("--sequences", type=int, default=2, help="random sequences per N for the event-driven figures")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="model seed")
    parser.add_argument("--input-seed", type=int, default=1)
    parser.add_argument("--generate", action="store_true", help="time Verilog generation of both cores")
    parser.add_argument("--generate-knobs", type=parse_knobs, nargs="+", default=[(8, 8, 4, 1)],
                        help="L,F,E knob settings to generate (generate() has no projection fan-in knob)")
    parser.add_argument("--generate-event-driven", action="store_true",
                        help="also generate the event-driven spiking core (event_mode engine) per setting")
    parser.add_argument("--generate-input-size", type=int, default=9)
    parser.add_argument("--rtl-dir", type=Path, default=None, help="keep the generated Verilog here")
    parser.add_argument("--out", type=Path, default=Path("runs/hw_cycles.json"))
    args = parser.parse_args(argv)
    if args.sequences < 1:
        parser.error("--sequences must be ≥ 1")
    if any(k[3] != 1 for k in args.generate_knobs):
        parser.error("--generate-knobs takes L,F,E: generate() has no projection fan-in knob")

    meta = {"benchmark": "hw_cycles", "hidden": args.hidden, "T": args.T, "layers": 1,
            "sequences": args.sequences, "seed": args.seed, "input_seed": args.input_seed,
            "classes": args.classes, "loadavg_1min_start": os.getloadavg()[0],
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "argv": sys.argv[1:] if argv is None else argv, "paper_ratios": PAPER_RATIOS}
    t0 = time.perf_counter()
    rows = measure(args)
    meta["measure_wall_s"] = round(time.perf_counter() - t0, 2)
    gen = time_generation(args) if args.generate else None
    meta["loadavg_1min_end"] = os.getloadavg()[0]
    print_tables(rows, gen, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "generation": gen}, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

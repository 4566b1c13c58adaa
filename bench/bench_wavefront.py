"""Diagonal (wavefront) schedule vs the naive double loop: forward+backward time of the spiking LSTM.

Usage (from the repository root)::

    nice -n 10 python bench/bench_wavefront.py [--batch 16] [--length 28] [--hidden 128]
        [--T 1 2 4 8] [--reps 5] [--threads 1] [--out wavefront.json]

For each T: one training step (forward, cross-entropy, backward) of a random one-layer spiking
LSTM (direct encoding, input 28, 10 classes, float32) with :meth:`SpikingLSTM.forward` (T+N−1
batched diagonals) and with :meth:`SpikingLSTM.forward_reference` (T·N cells one by one; with
``bitexact=False``, i.e. one B-row GEMM per cell, the fair baseline; the bit-exact reference is
slower still). Reports the best of ``--reps`` runs in wall-clock and process-CPU seconds and
the speed-up, plus the load average at the start (the machine is shared: wall time includes
waiting for a core). Takes well under two minutes at the defaults. No data needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from snnhw.model import ModelConfig, build_model


def _step_time(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, naive: bool, reps: int) -> dict[str, float]:
    """Best wall and CPU seconds of one forward + backward over ``reps`` runs."""
    walls, cpus = [], []
    for _ in range(reps):
        model.zero_grad(set_to_none=True)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        logits = model.forward_reference(x, bitexact=False) if naive else model(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
    return {"wall_s": min(walls), "cpu_s": min(cpus)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a markdown table, write the JSON (``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=28, help="sequence length N")
    parser.add_argument("--hidden", type=int, default=128, help="hidden size H")
    parser.add_argument("--T", type=int, nargs="+", default=[1, 2, 4, 8], help="time steps to test")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    rows = []
    for T in tqdm(args.T, desc="T", file=sys.stderr):
        torch.manual_seed(0)
        cfg = ModelConfig(input_size=28, num_classes=10, hidden_size=args.hidden, spiking=True, T=T)
        model = build_model(cfg)
        x = torch.rand(args.batch, args.length, 28)
        y = torch.randint(0, 10, (args.batch,))
        _step_time(model, x, y, naive=False, reps=1)  # warm-up (allocator, BLAS)
        _step_time(model, x, y, naive=True, reps=1)
        diag = _step_time(model, x, y, naive=False, reps=args.reps)
        naive = _step_time(model, x, y, naive=True, reps=args.reps)
        rows.append({
            "T": T, "diagonals": T + args.length - 1, "cells": T * args.length,
            "diagonal": diag, "naive": naive,
            "speedup_wall": naive["wall_s"] / diag["wall_s"], "speedup_cpu": naive["cpu_s"] / diag["cpu_s"],
        })

    print(f"forward+backward, batch {args.batch}, N = {args.length}, H = {args.hidden}, "
          f"{args.threads} thread(s), load average {load:.2f} at start, best of {args.reps}")
    print("| T | diagonal steps | naive cells | diagonal wall s (CPU s) | naive wall s (CPU s) | speed-up wall (CPU) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        d, n = r["diagonal"], r["naive"]
        print(f"| {r['T']} | {r['diagonals']} | {r['cells']} | {d['wall_s']:.3f} ({d['cpu_s']:.3f}) | "
              f"{n['wall_s']:.3f} ({n['cpu_s']:.3f}) | {r['speedup_wall']:.2f}× ({r['speedup_cpu']:.2f}×) |")
    if args.out is not None:
        result = {
            "benchmark": "wavefront", "batch": args.batch, "length": args.length, "hidden": args.hidden,
            "input_size": 28, "layers": 1, "dtype": "float32", "threads": args.threads, "reps": args.reps,
            "loadavg_1min_start": load, "torch": torch.__version__, "rows": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

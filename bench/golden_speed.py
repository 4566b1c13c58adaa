"""Throughput of the integer golden models on a random model (sequences per second).

Usage (from the repository root)::

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/golden_speed.py [--batch 3000] [--json out.json]

Defaults: the HAR-sized case of the task (H = 128, D = 9, N = 128, T = 4, one layer, direct
encoding, batch 3000). Prints wall-clock and process-CPU seconds and sequences per second of
``run_spiking`` (and of ``run_baseline`` with ``--baseline``), plus the machine's load average
at the start: on a shared machine the wall-clock rate understates the CPU rate. No data needed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from snnhw.quant import golden, synthetic


def _timed(label: str, func, batch: int) -> dict[str, float]:
    """Run ``func`` once; return and print wall / CPU seconds and sequences per second."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    func()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    out = {"wall_s": wall, "cpu_s": cpu, "seq_per_s_wall": batch / wall, "seq_per_cpu_s": batch / cpu}
    print(f"{label}: {batch} sequences, wall {wall:.1f} s ({batch / wall:.1f} seq/s), "
          f"CPU {cpu:.1f} s ({batch / cpu:.1f} seq per CPU-second)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=3000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--input", type=int, default=9)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--encoding", choices=("direct", "rate"), default="direct")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--baseline", action="store_true", help="also time the MAC baseline")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args()

    model = synthetic.random_frozen_spiking(0, input_size=args.input, hidden_size=args.hidden, T=args.T,
                                            num_layers=args.layers, encoding=args.encoding)
    x, lengths = synthetic.random_inputs(model, 1, args.batch, args.length, vary_lengths=False)
    config = {key: getattr(args, key) for key in ("batch", "hidden", "input", "length", "T", "layers", "encoding",
                                                   "chunk")}
    report = {"config": config, "load_average_1min": os.getloadavg()[0], "cpu_count": os.cpu_count(),
              "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    print(f"load average {report['load_average_1min']:.2f} on {report['cpu_count']} CPUs; config {config}")
    report["spiking"] = _timed("run_spiking", lambda: golden.run_spiking(model, x, lengths, chunk=args.chunk,
                                                                         progress=True), args.batch)
    if args.baseline:
        base = synthetic.random_frozen_baseline(0, input_size=args.input, hidden_size=args.hidden,
                                                num_layers=args.layers)
        xb, _ = synthetic.random_inputs(base, 1, args.batch, args.length, vary_lengths=False)
        report["baseline"] = _timed("run_baseline", lambda: golden.run_baseline(base, xb, lengths, progress=True),
                                    args.batch)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

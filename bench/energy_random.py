"""Operation-count energy of the spiking model vs the MAC baseline on random synthetic models.

Usage (from the repository root)::

    nice -n 10 python bench/energy_random.py [--T 4] [--batch 16] [--json out.json]

The models are random (``snnhw.quant.synthetic``), not trained: the figures show what the
counters and the 45 nm table give for realistic spike rates (about 0.5 for f, i, o and 0.15-0.2
for h), not the paper's trained networks. Prints pJ per inference for the compute-only scope
(the paper's) and with memory reads, for the dense and event-driven spiking schedules.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from snnhw.quant import energy, golden, synthetic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--input", type=int, default=9)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--encoding", choices=("direct", "rate"), default="direct")
    parser.add_argument("--table", type=Path, help="energy table JSON (default: the packaged 45 nm table)")
    parser.add_argument("--json", type=Path, help="write the full report to this JSON file")
    args = parser.parse_args()

    spiking = synthetic.random_frozen_spiking(0, input_size=args.input, hidden_size=args.hidden, T=args.T,
                                              encoding=args.encoding)
    baseline = synthetic.random_frozen_baseline(0, input_size=args.input, hidden_size=args.hidden)
    x, lengths = synthetic.random_inputs(spiking, 1, args.batch, args.length, vary_lengths=False)
    xb, _ = synthetic.random_inputs(baseline, 1, args.batch, args.length, vary_lengths=False)
    counts_s = golden.run_spiking(spiking, x, lengths, counters=True).counters
    counts_b = golden.run_baseline(baseline, xb, lengths, counters=True).counters
    report = energy.energy_report(counts_s, counts_b, energy.load_energy_table(args.table))
    print(f"random models: H={args.hidden} D={args.input} N={args.length} T={args.T} {args.encoding}, "
          f"{args.batch} sequences; table: {report['table_name']}")
    print("sparsity (nonzero fraction):",
          {k: round(v, 3) for k, v in counts_s["layers"][0]["sparsity"].items()})
    b = report["baseline"]
    print(f"baseline: compute {b['compute_with_head_pj'] / 1e6:.3f} uJ, with memory {b['total_pj'] / 1e6:.3f} uJ")
    for name, part in report["spiking"].items():
        ratios = report["ratio_by_schedule"][name]
        print(f"spiking {name:5s}: compute {part['compute_with_head_pj'] / 1e6:.3f} uJ "
              f"(baseline/spiking {ratios['compute']:.2f}x), with memory {part['total_pj'] / 1e6:.3f} uJ "
              f"({ratios['with_memory']:.2f}x)")
    print(f"paper: {report['paper_ratio']['direct'][0]}-{report['paper_ratio']['direct'][1]}x (direct), "
          f"{report['paper_ratio']['poisson'][0]}-{report['paper_ratio']['poisson'][1]}x (Poisson), compute only")
    if args.json:
        args.json.write_text(json.dumps({"counters": {"spiking": counts_s, "baseline": counts_b}, "energy": report},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One recipe over several seeds: per-seed paired comparisons and the mean over the seeds.

    python bench/paired_seeds.py runs/s17/e48wd0.1-s*-fh.json [--within 0.3] [--json out.json]

Reads the records ``snnhw eval --model A --reference B --json F`` writes (one per seed; A a
model of the recipe, B its reference: the hard LSTM, or the float model of an integer model)
and prints, per record (its figures recomputed from its counts by :mod:`snnhw.train.paired`),
the accuracies, the difference A − B with its 95 % interval, the windows the two decide
differently, the windows right under one model only and McNemar's exact p; then, over the
records, the mean difference, its standard deviation, a t interval of the mean (95 %, ``k − 1``
degrees of freedom), how many differences are not more than ``--within`` points below the
reference (at two decimals, as the results tables print them) and the right-only windows summed
over the records. The t interval is the spread of the recipe over its seeds on this one test
split; each record's own interval is the test split's sampling resolution (``docs/training.md``,
"How far apart two models are").
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy import stats

from common import markdown_table, write_results
from snnhw.train.paired import PairedComparison


def load_comparison(path: Path) -> PairedComparison:
    """The comparison in the ``eval --reference`` record at ``path`` (its figures recomputed from its
    counts); exits with a message when the record has none."""
    record = json.loads(path.read_text())
    if "paired" not in record:
        sys.exit(f"{path}: no 'paired' entry (write it with snnhw eval --model A --reference B --json {path})")
    return PairedComparison.from_dict(record["paired"])


def summarise(comparisons: list[PairedComparison], within: float) -> dict[str, Any]:
    """Mean, standard deviation and 95 % t interval of the differences (points) over ``comparisons``."""
    diffs = [c.difference for c in comparisons]
    mean = statistics.fmean(diffs)
    out: dict[str, Any] = {"records": len(diffs), "mean_points": mean,
                           "within": sum(round(d, 2) >= -within for d in diffs),
                           "only_model_right": sum(c.only_a for c in comparisons),
                           "only_reference_right": sum(c.only_b for c in comparisons)}
    if len(diffs) > 1:
        sd = statistics.stdev(diffs)
        half = float(stats.t.ppf(0.975, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
        out.update(sd_points=sd, interval95_points=[mean - half, mean + half])
    return out


def main() -> None:
    """Parse the arguments, print the table and the summary, write the JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="+", type=Path, help="JSON files written by snnhw eval --reference --json")
    parser.add_argument("--within", type=float, default=0.3, help="tolerance below the reference, points (0.3)")
    parser.add_argument("--json", type=Path, help="also write the table and summary as JSON")
    args = parser.parse_args()
    comparisons = [load_comparison(p) for p in args.records]
    rows = []
    for path, c in zip(args.records, comparisons):
        lo, hi = c.interval95
        rows.append([path.name, f"{100 * c.correct_a / c.n:.2f}", f"{100 * c.correct_b / c.n:.2f}",
                     f"{c.difference:+.2f} ({lo:+.2f} … {hi:+.2f})", str(c.changed), f"{c.only_a} / {c.only_b}",
                     f"{c.p_value:.2f}"])
    print(markdown_table(["record", "model %", "reference %", "difference (95 % interval)", "decided differently",
                          "right only under model / reference", "McNemar p"], rows))
    summary = summarise(comparisons, args.within)
    line = f"mean difference {summary['mean_points']:+.3f} points over {summary['records']} records"
    if "sd_points" in summary:
        lo, hi = summary["interval95_points"]
        line += f", SD {summary['sd_points']:.3f}, 95 % t interval of the mean {lo:+.3f} … {hi:+.3f}"
    print(line + f"; {summary['within']} of {summary['records']} not more than {args.within} below the reference; "
          f"right only under the model {summary['only_model_right']}, only under the reference "
          f"{summary['only_reference_right']} (summed)")
    write_results(args.json, {"records": [str(p) for p in args.records], "summary": summary})


if __name__ == "__main__":
    main()

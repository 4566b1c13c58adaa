"""The accuracy targets in one table: several recipes, each over its seeds, from paired records.

    python bench/target_table.py "HAR T = 4, float − hard LSTM=runs/s17/e48wd0.1-s?-fh.json" \\
        "HAR T = 4, integer − float=runs/s18/har-T4-e48wd0.1-s?-if.json" ... [--within 0.3] [--json out.json]

Each argument is ``LABEL=GLOB``: a row label and the ``snnhw eval --model A --reference B --json F``
records of one recipe's seeds (one per seed; A the recipe's model, B its reference). Per row it
prints the seeds, the mean difference A − B with its 95 % t interval over the seeds (as
``paired_seeds.py``, whose summary it uses), each seed's difference, how many are not more than
``--within`` points below the reference, the seeds whose own McNemar test finds a difference
(p < 0.05, with the sign) and the range of sequences decided differently. A glob that matches
nothing stops the script with a message naming it.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from common import markdown_table, write_results
from paired_seeds import load_comparison, summarise

SIGNIFICANCE = 0.05
"""McNemar p below which a seed's difference is reported as significant."""


def signed(points: float, digits: int = 2) -> str:
    """``points`` with its sign, the minus as U+2212 (as the results tables print it)."""
    return f"{points:+.{digits}f}".replace("-", "\u2212")


def parse_row(text: str) -> tuple[str, list[Path]]:
    """``LABEL=GLOB`` → the label and the sorted matching records; exits when malformed or empty."""
    label, sep, pattern = text.rpartition("=")
    if not sep or not label or not pattern:
        sys.exit(f"expected LABEL=GLOB, got {text!r}")
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        sys.exit(f"{label}: no record matches {pattern}")
    return label, paths


def main() -> None:
    """Parse the rows, print the table, write the JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="+", metavar="LABEL=GLOB", help="a row label and its records")
    parser.add_argument("--within", type=float, default=0.3, help="tolerance below the reference, points (0.3)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    table, out = [], []
    for label, paths in (parse_row(r) for r in args.rows):
        comparisons = [load_comparison(p) for p in paths]
        summary = summarise(comparisons, args.within)
        mean = signed(summary["mean_points"], 3)
        if "interval95_points" in summary:
            lo, hi = summary["interval95_points"]
            mean += f" ({signed(lo)} … {signed(hi)})"
        significant = [f"{signed(c.difference)} (p {c.p_value:.3f})" for c in comparisons if c.p_value < SIGNIFICANCE]
        changed = [c.changed for c in comparisons]
        table.append([label, str(len(comparisons)), mean, ", ".join(signed(c.difference) for c in comparisons),
                      f"{summary['within']} of {len(comparisons)}", ", ".join(significant) or "none",
                      f"{min(changed)}–{max(changed)}" if min(changed) != max(changed) else str(changed[0])])
        out.append({"label": label, "records": [str(p) for p in paths], "summary": summary,
                    "significant": significant})
    print(markdown_table(["comparison", "seeds", "mean difference, points (95 % t interval)", "per seed",
                          f"not more than {args.within} below", f"significant (p < {SIGNIFICANCE})",
                          "decided differently"], table))
    write_results(args.json, {"within": args.within, "rows": out})


if __name__ == "__main__":
    main()

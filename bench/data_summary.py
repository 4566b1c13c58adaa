"""Load each real stand-in dataset once and print split sizes, shapes and load time.

Usage (from the repository root)::

    nice -n 10 python bench/data_summary.py [--data-dir ../shared/data] [--json out.json]

``--data-dir`` defaults to ``../shared/data`` relative to the repository root. Times are wall
clock seconds of one ``load_dataset`` call each (cold: no feature cache), in this process, so
the first speech loader also pays for importing librosa.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from snnhw.data import load_dataset

REPO = Path(__file__).resolve().parents[1]
STAND_INS = (("mnist", "mnist-10k"), ("har", "uci-hapt/RawData"), ("fsdd", "fsdd/recordings"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / ".." / "shared" / "data",
                        help="folder holding mnist-10k/, uci-hapt/, fsdd/ (default: ../shared/data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--only", choices=[n for n, _ in STAND_INS], action="append",
                        help="load only this dataset (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the summary to this JSON file")
    args = parser.parse_args()
    rows = []
    for name, sub in STAND_INS:
        if args.only and name not in args.only:
            continue
        path = args.data_dir / sub
        t0 = time.perf_counter()
        b = load_dataset(name, path, seed=args.seed, val_fraction=args.val_fraction)
        seconds = time.perf_counter() - t0
        row = {"dataset": name, "path": str(path.resolve()), "seconds": round(seconds, 2),
               "sizes": b.meta["sizes"], "shape": [b.train.seq_len, b.train.n_features],
               "classes": len(b.class_names),
               "test_class_counts": [int(c) for c in (b.test.y[:, None] == range(len(b.class_names))).sum(0)],
               "split_rule": b.meta["split_rule"]}
        rows.append(row)
        print(f"{name:6s} train {row['sizes']['train']:5d}  val {row['sizes']['val']:5d}  "
              f"test {row['sizes']['test']:5d}  N x D = {row['shape'][0]} x {row['shape'][1]}  "
              f"classes {row['classes']}  {seconds:6.2f} s  ({row['split_rule']})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

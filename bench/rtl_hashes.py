"""SHA-256 of the generated Verilog of every configuration in the cocotb regression.

Generates each configuration of ``tests/sim/test_cocotb_spiking.py`` (regular and debug cases)
and ``tests/sim/test_cocotb_baseline.py`` (``--runslow`` cases included) at its default seed
through the regression's own product path (``simfixtures.generate_core``), plus both cores of
the bundled default model at the build's knobs, and writes ``{name: sha256}`` as JSON.
With ``--compare FILE`` it also compares with an earlier run and exits 1 on any difference:
the check that a refactor left the RTL byte-identical.

    python bench/rtl_hashes.py -o /tmp/before.json
    python bench/rtl_hashes.py -o /tmp/after.json --compare /tmp/before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "sim")]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--compare", type=Path, help="an earlier output to compare with")
    parser.add_argument("-k", default="", help="only configurations whose name contains this text")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import test_cocotb_baseline as tb
    import test_cocotb_spiking as ts
    from simfixtures import generate_core

    from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking

    jobs = [("spiking/" + c.name, random_frozen_spiking, c) for c in ts.CASES + ts.DEBUG_CASES]
    jobs += [("baseline/" + c.name, random_frozen_baseline, c) for c in tb.CASES]
    hashes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make, case in jobs:
            if args.k not in name:
                continue
            model = make(case.seed, **case.model)
            try:
                _, verilog = generate_core(model, case.knobs, Path(tmp) / name)
            except Exception as exc:  # a rejected configuration is recorded as such
                hashes[name] = f"rejected: {type(exc).__name__}"
                print(f"{name}: rejected ({exc})", flush=True)
                continue
            hashes[name] = _sha(verilog)
            print(f"{name}: {hashes[name]}", flush=True)
    args.output.write_text(json.dumps(hashes, indent=1) + "\n")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    diff = [n for n in sorted(set(before) | set(hashes)) if before.get(n) != hashes.get(n) and args.k in n]
    for n in diff:
        print(f"DIFFERENT {n}: {before.get(n)} -> {hashes.get(n)}")
    print(f"{len(hashes) - len(diff)} identical, {len(diff)} different")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())

"""Place and route one generated core alone on an ECP5 and print its routed Fmax and resources.

    python bench/route_core.py runs/route/rtl_q/spiking_core.v -o runs/route/work_q \\
        [--device LFE5U-85F --package BG381 --grade 6] [--clock-mhz 100] [--seed 1]

What ``snnhw build``'s ``pnr`` step runs per core (``snnhw.flow.ecp5.route_core``: Yosys
``synth_ecp5`` of the core in a timing wrapper, nextpnr-ecp5 with the clock on a global
network), for a Verilog file from ``snnhw generate`` with any knobs (the build routes the
knobs it builds). The top module is read from the core's manifest next to the Verilog. Writes
the run into the output folder (``pnr.json``, reports, logs) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from snnhw.flow.ecp5 import Ecp5Device, route_core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verilog", type=Path, help="a core's Verilog from snnhw generate")
    parser.add_argument("-o", "--output", type=Path, required=True, help="work folder")
    parser.add_argument("--device", default="LFE5U-85F")
    parser.add_argument("--package", default="BG381")
    parser.add_argument("--grade", default="6")
    parser.add_argument("--clock-mhz", type=float, default=100.0, help="clock constraint (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="placement seed (default 1)")
    args = parser.parse_args()
    manifest = args.verilog.with_suffix(".manifest.json")
    if not manifest.is_file():
        parser.error(f"{manifest} not found: route a core written by snnhw generate")
    top = json.loads(manifest.read_text())["top"]
    result = route_core(args.verilog, top, args.output, Ecp5Device(args.device, args.package, args.grade),
                        freq_mhz=args.clock_mhz, seed=args.seed)
    path = result["critical_paths"][0] if result.get("critical_paths") else {}
    print(json.dumps({
        "top": top, "fmax_mhz": result["fmax_min_mhz"], "constraint_mhz": args.clock_mhz, "router": result["router"],
        "seed": result["seed"], "synth_s": result["synth_seconds"], "pnr_s": result["pnr_seconds"],
        "used": {k: v["used"] for k, v in result["utilisation"].items()},
        "critical_path": {k: path.get(k) for k in ("delay_ns", "logic_ns", "routing_ns", "logic_stages", "start",
                                                   "end")},
        "reused": result.get("reused", False)}, indent=1))


if __name__ == "__main__":
    main()

"""Where a core's LUTs go: a hierarchical Yosys ``synth_xilinx`` and the cells of each block.

    python bench/module_breakdown.py RTL_DIR [-o breakdown.json]

``RTL_DIR`` is a ``snnhw generate`` output (``spiking_core.v``, ``baseline_core.v`` and their
manifests). Each core is synthesised with :func:`snnhw.flow.tools.synth_xilinx_hierarchy_script`
(not flattened), and every module's own LUTs, flip-flops, CARRY4s and DSP48E1s are summed per
block: the module path with engine, lane and tree indices replaced by ``*`` (so
``layer_0.engine_*.tree_*`` is all adder trees of layer 0). Prints a Markdown table per core,
with the adders' share, and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from snnhw.flow.tools import read_stat_cells, run_yosys, synth_xilinx_hierarchy_script

KINDS = {"spiking": "spiking_core.v", "baseline": "baseline_core.v"}


def _block(module: str, top: str) -> str:
    """``\\snn_lstm_core.layer_0.engine_1.tree_2_3`` → ``layer_0.engine_*.tree_*``."""
    name = module.lstrip("\\")
    name = name[len(top):].lstrip(".") or "(top)"
    return re.sub(r"(engine|tree|lane|mac|unit)_\d+(_\d+)*", r"\1_*", name)


def _counts(cells: dict[str, int]) -> dict[str, int]:
    return {"LUT": sum(v for k, v in cells.items() if re.fullmatch(r"LUT\d", k)),
            "FF": sum(v for k, v in cells.items() if k.startswith("FD")),
            "CARRY4": cells.get("CARRY4", 0), "DSP48E1": cells.get("DSP48E1", 0),
            "LUTRAM": sum(v for k, v in cells.items() if k.startswith("RAM"))}


def breakdown(verilog: Path, top: str, work: Path) -> dict[str, Any]:
    """Per-block cell counts of one core (see the module docstring)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "core.v").write_text(verilog.read_text())
    start = time.monotonic()
    run_yosys(synth_xilinx_hierarchy_script("core.v", top, stat_json="stat.json"), what=f"yosys on {verilog.name}",
              cwd=work, log=work / "synth.log", timeout_s=3600, outputs=[work / "stat.json"])
    text = (work / "stat.json").read_text()
    modules = json.loads(text[text.index("{"):])["modules"]
    blocks: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    instances: dict[str, int] = defaultdict(int)
    for module, info in modules.items():
        block = _block(module, top)
        instances[block] += 1
        for key, value in _counts({k: int(v) for k, v in info.get("num_cells_by_type", {}).items()}).items():
            blocks[block][key] += value
    total = _counts(read_stat_cells(work / "stat.json")[0])
    total["LUT"] = sum(b["LUT"] for b in blocks.values())
    return {"top": top, "seconds": round(time.monotonic() - start, 1), "total": total,
            "blocks": {k: {**v, "instances": instances[k]} for k, v in sorted(blocks.items())}}


def markdown(kind: str, result: dict[str, Any]) -> str:
    """One table: blocks by LUTs, with each block's share of the core's LUTs."""
    total = max(1, result["total"]["LUT"])
    rows = sorted(result["blocks"].items(), key=lambda kv: -kv[1]["LUT"])
    lines = [f"{kind} core ({result['top']}): {result['total']['LUT']:,} LUT in all", "",
             "| block | instances | LUT | share | FF | CARRY4 | DSP48E1 |", "|---|---|---|---|---|---|---|"]
    for name, b in rows:
        if b["LUT"] or b["FF"] or b["DSP48E1"]:
            lines.append(f"| `{name}` | {b['instances']} | {b['LUT']:,} | {100 * b['LUT'] / total:.1f} % | "
                         f"{b['FF']:,} | {b['CARRY4']:,} | {b['DSP48E1']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rtl_dir", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path("breakdown.json"))
    parser.add_argument("--work", type=Path, default=Path("breakdown_work"),
                        help="Yosys working folder (relative paths only, see docs/toolchain.md)")
    args = parser.parse_args()
    results = {}
    for kind, file in KINDS.items():
        verilog = args.rtl_dir / file
        if not verilog.is_file():
            continue
        manifest = json.loads((args.rtl_dir / file.replace(".v", ".manifest.json")).read_text())
        results[kind] = breakdown(verilog, manifest["top"], args.work / kind)
        print(markdown(kind, results[kind]) + "\n")
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

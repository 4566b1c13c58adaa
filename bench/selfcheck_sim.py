"""Simulate a build's self-checking top (Amaranth simulator): golden ROM → pass, one corrupted word → fail.

    /work/venv/bin/python bench/selfcheck_sim.py build/default_har [--word K]

Rebuilds the spiking core of ``<build>/model/spiking.snnhw`` with the build's knobs (from its
manifest ``<build>/rtl/spiking_core.manifest.json``), loads the ROM words the build wrote (``board/selfcheck_roms.json``),
simulates :class:`snnhw.flow.selfcheck.SelfCheckTop` until ``done`` and prints done / passed /
failed / errors and the cycles; then flips bit 0 of expected word K (default: the middle one)
and simulates again. Writes ``<build>/board/selfcheck_sim.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def simulate(top: object, max_cycles: int) -> dict[str, int]:
    """Run ``top`` until done or ``max_cycles``; returns its status and the cycles taken."""
    from amaranth.sim import Simulator

    sim = Simulator(top)
    sim.add_clock(1e-8)
    result: dict[str, int] = {}

    async def bench(ctx) -> None:  # noqa: ANN001
        cycles = 0
        while cycles < max_cycles and not ctx.get(top.done):  # type: ignore[attr-defined]
            await ctx.tick()
            cycles += 1
        await ctx.tick()
        result.update(cycles=cycles, done=ctx.get(top.done), passed=ctx.get(top.passed),  # type: ignore[attr-defined]
                      failed=ctx.get(top.failed), errors=ctx.get(top.errors))  # type: ignore[attr-defined]

    sim.add_testbench(bench)
    sim.run()
    return result


def main() -> int:
    """Simulate the golden and the corrupted ROM; exit 0 when the first passes and the second fails."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("build_dir")
    p.add_argument("--word", type=int, default=None, help="expected word to corrupt (default: the middle one)")
    args = p.parse_args()
    from snnhw.flow.selfcheck import SelfCheckTop
    from snnhw.hw.registry import core_spec
    from snnhw.quant.frozen_io import load_frozen

    build = Path(args.build_dir)
    spec = core_spec("spiking")
    knobs = spec.knobs_type.from_manifest(json.loads((build / "rtl" / spec.manifest_file).read_text())["knobs"])
    roms = json.loads((build / "board" / "selfcheck_roms.json").read_text())
    board = json.loads((build / "board.json").read_text())
    model = load_frozen(build / "model" / "spiking.snnhw")

    def core() -> object:
        return spec.build(model, knobs)

    budget = int(board["selfcheck"]["core_cycles"]) + 100
    inputs, expected = roms["input_words"], roms["expected_words"]
    word = len(expected) // 2 if args.word is None else args.word
    corrupted = list(expected)
    corrupted[word] ^= 1
    out = {}
    for name, words in (("golden", expected), (f"word {word} corrupted", corrupted)):
        start = time.perf_counter()
        res = simulate(SelfCheckTop(core(), inputs, words), budget)
        res["seconds"] = round(time.perf_counter() - start, 1)
        out[name] = res
        print(f"{name}: {res}")
    (build / "board" / "selfcheck_sim.json").write_text(json.dumps(out, indent=2) + "\n")
    good, bad = out["golden"], out[f"word {word} corrupted"]
    status = [(r["done"], r["passed"], r["failed"]) for r in (good, bad)]
    return 0 if status == [(1, 1, 0), (1, 0, 1)] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Systematic mutants: mutate the generated Verilog of each core and run the regression on every mutant.

Usage (from the repository root; one simulator at a time, run it under ``nice``)::

    nice -n 15 .venv/bin/python bench/mutants.py --count 40 --sequences 32 --n-max 16 --slow-sink 0.9 --out runs/mutants
    # the same with exactly the modes of tests/sim (isolated, stalls, slow-sink)
    nice -n 15 .venv/bin/python bench/mutants.py --count 40 --sequences 32 --n-max 16 --regression-modes --out runs/mutants2
    .venv/bin/python bench/mutants.py --list                                 # the sample only
    # one survivor again, on another stimulus or configuration (docs/verification.md)
    nice -n 15 .venv/bin/python bench/mutants.py --core baseline --only bypass-8e59bfdcfb --fanin 4 --no-equiv

For each core (the spiking core and the MAC baseline) it builds one small regression
configuration exactly as ``tests/sim`` does (``synthetic.random_frozen_*`` from the seed,
``simfixtures.generate_core``, ``simfixtures.batch_inputs``, ``default_modes(seed,
back_to_back=True)``: isolated with exact cycle counts, stalls, back to back), checks that the
unmutated core passes, enumerates every mutant of its Verilog (:mod:`snnhw.sim.mutants`: + ↔ −,
constants ±1, comparison flips, mux arms swapped, pipeline registers bypassed, valid/ready
stuck at 0/1), samples ``--count`` of them spread over the Amaranth blocks and operators
(deterministic from ``--mutant-seed``) and runs the stimulus on each (Icarus by default, a
wall-clock limit per mutant). Each mutant is killed (data mismatch, wrong ``last``, cycle
count off, lost words / timeout, extra words, hang, simulation error), survives, or is
stillborn (does not compile: left out of the kill rate). A survivor's module is handed to
Yosys for an equivalence proof (``--no-equiv`` skips it). ``--slow-sink P`` adds a mode whose
sink stalls with probability P (output buffers fill up); ``--regression-modes`` runs exactly the
modes of ``tests/sim`` instead (``regression_modes(seed)``: isolated, stalls, slow-sink with
P = 0.9; no back-to-back); ``--stimulus-seed``, ``--hidden``,
``--lanes``, ``--fanin`` and ``--saturate`` change the stimulus or the configuration, and
``--only`` / ``--grep`` pick mutants, to examine a survivor.

Writes ``mutants.json`` (configuration, machine, every mutant with its outcome, kill rates per
core, block and operator) and ``mutants.md`` (the same as tables, survivors listed) into
``--out``; both are rewritten after every mutant, so an interrupted campaign keeps its results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "sim"), str(REPO / "tests")]

from simfixtures import batch_inputs, generate_core  # noqa: E402

from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs  # noqa: E402
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking  # noqa: E402
from snnhw.sim.mutants import (  # noqa: E402
    MutantResult,
    enumerate_mutants,
    prove_equivalent,
    run_mutant,
    sample_mutants,
    summarize,
)
from snnhw.sim.runner import simulate, simulator_missing  # noqa: E402
from snnhw.sim.stimulus import (  # noqa: E402
    SLOW_SINK_STALL,
    build_stimulus,
    default_modes,
    regression_modes,
)


@dataclass(frozen=True)
class CoreConfig:
    """One core's small regression configuration (the mutation checks' models, head in hardware)."""

    core: str
    seed: int
    hidden: int
    lanes: int
    fanin: int
    saturate: bool = False

    @property
    def description(self) -> str:
        """One line naming the model and the knobs."""
        sat = ", saturating registers" if self.saturate else ""
        if self.core == "spiking":
            return (f"D3 H{self.hidden} T2, direct input{sat}, head in HW; lanes {self.lanes}, fanin {self.fanin}, "
                    f"E = T; seed {self.seed}")
        return f"D3 H{self.hidden}{sat}, head in HW; lanes {self.lanes}, fanin {self.fanin}; seed {self.seed}"

    def build(self) -> tuple[Any, Any]:
        """(frozen model, knobs)."""
        if self.core == "spiking":
            return (random_frozen_spiking(self.seed, input_size=3, hidden_size=self.hidden, T=2, saturate=self.saturate),
                    SpikingKnobs(lanes=self.lanes, fanin=self.fanin, head_in_hw=True))
        return random_frozen_baseline(self.seed, input_size=3, hidden_size=self.hidden, saturate=self.saturate), \
            BaselineKnobs(lanes=self.lanes, fanin=self.fanin, head_in_hw=True)


CONFIGS = {
    "spiking": CoreConfig("spiking", 901, hidden=4, lanes=2, fanin=2),
    "baseline": CoreConfig("baseline", 902, hidden=4, lanes=2, fanin=3),
}


def config_of(core: str, args: argparse.Namespace) -> CoreConfig:
    """The core's configuration with the command line's ``--hidden/--lanes/--fanin/--saturate`` overrides."""
    base = CONFIGS[core]
    return CoreConfig(core, base.seed, hidden=args.hidden or base.hidden, lanes=args.lanes or base.lanes,
                      fanin=args.fanin or base.fanin, saturate=args.saturate)


def machine() -> dict[str, Any]:
    """Where the campaign ran: host, CPUs, load, Python and the simulator's version."""
    try:
        icarus = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        icarus = None
    return {"host": platform.node(), "cpus": os.cpu_count(), "load_avg": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(), "icarus": icarus, "nice": os.nice(0)}


def _rate(summary: dict[str, Any]) -> str:
    """``killed/viable (rate %)`` of one tally, and the score without proven-equivalent survivors."""
    viable = summary["killed"] + summary["survived"]
    if not viable:
        return "—"
    text = f"{summary['killed']}/{viable} ({100 * summary['kill_rate']:.1f} %)"
    if summary["equivalent"]:
        text += f"; {100 * summary['score']:.1f} % without {summary['equivalent']} proven equivalent"
    return text


def _code(text: str) -> str:
    """``text`` as inline code in a table cell (a ``|`` would end the cell)."""
    return "`" + text.replace("|", "\\|") + "`"


def markdown(doc: dict[str, Any]) -> str:
    """The campaign as markdown tables."""
    machine_line = (f"Machine: {doc['machine']['host']}, {doc['machine']['cpus']} CPUs, load "
                    f"{doc['machine']['load_avg']}, {doc['machine']['icarus']}, simulator {doc['sim']}; "
                    f"wall {doc.get('wall_s', 0):.0f} s")
    out = [f"# Systematic mutants ({doc['started']})", "", f"Command: `{doc['command']}`", "", machine_line, ""]
    for core, rep in doc["cores"].items():
        total = rep["summary"]["total"]
        setup = (f"{rep['candidates']} candidate mutants, {total['mutants']} sampled (mutant seed "
                 f"{doc['mutant_seed']}; Verilog SHA-256 {rep['verilog_sha256'][:12]}…); "
                 f"regression: {rep['sequences']} sequences (N = {rep['lengths']}, "
                 f"stimulus seed {rep['stimulus_seed']}), "
                 f"modes {', '.join(rep['modes'])}; control (unmutated) {rep['control']}; wall {rep['wall_s']:.0f} s.")
        out += [f"## {core}: {rep['config']}", "", setup,
                "", f"**Kill rate {_rate(total)}**, stillborn {total['stillborn']}.", "",
                "| block | mutants | killed | survived | stillborn | kill rate |", "|---|---|---|---|---|---|"]
        for block, t in rep["summary"]["blocks"].items():
            out.append(f"| `{block}` | {t['mutants']} | {t['killed']} | {t['survived']} | {t['stillborn']} | "
                       f"{_rate(t)} |")
        out += ["", "| operator | mutants | killed | survived | stillborn | kill rate |", "|---|---|---|---|---|---|"]
        for op, t in rep["summary"]["operators"].items():
            out.append(f"| {op} | {t['mutants']} | {t['killed']} | {t['survived']} | {t['stillborn']} | {_rate(t)} |")
        kinds = ", ".join(f"{k} {v}" for k, v in rep["summary"]["kill_kinds"].items())
        out += ["", f"Killed by: {kinds or '—'}.", ""]
        rows = [r for r in rep["results"] if r["status"] != "killed"]
        if rows:
            proof = {True: "proven equivalent", False: "no module-level proof", None: "—"}
            out += ["| id | status | module | line | original → mutated | Yosys equivalence |", "|---|---|---|---|---|---|"]
            for r in rows:
                out.append(f"| `{r['id']}` | {r['status']} | `{r['module']}` | {r['line']} | "
                           f"{_code(r['original'])} → {_code(r['mutated'])} | {proof[r['equivalent']]} |")
            out.append("")
    return "\n".join(out) + "\n"


def run_core(cfg: CoreConfig, args: argparse.Namespace, root: Path, doc: dict[str, Any], write: Any) -> None:
    """Generate, check the control, sample and run the mutants of one core; results go into ``doc``."""
    t0 = time.perf_counter()
    model, knobs = cfg.build()
    schedule, verilog = generate_core(model, knobs, root / cfg.core / "rtl")
    text = verilog.read_text()
    stimulus_seed = cfg.seed if args.stimulus_seed is None else args.stimulus_seed
    x, lengths = batch_inputs(model, stimulus_seed, args.sequences, args.n_max, directed=args.stimulus == "directed")
    if args.regression_modes:
        modes = regression_modes(cfg.seed)
    else:
        modes = default_modes(cfg.seed, back_to_back=True, slow_sink=args.slow_sink)
    stim = build_stimulus(model, schedule, x, lengths, modes=modes)
    stim_path = stim.save(root / cfg.core / "stimulus.json")
    c0 = time.perf_counter()
    control = simulate(stim, [verilog], root / cfg.core / "control", sim=args.sim)
    control_s = time.perf_counter() - c0
    if not control.passed:
        raise SystemExit(f"{cfg.core}: the unmutated core fails the regression: {control.sim.messages}")
    candidates = enumerate_mutants(text)
    chosen = sample_mutants(candidates, args.count, args.mutant_seed)
    if args.only:
        chosen = [m for m in candidates if m.id in args.only]
    if args.grep:
        pattern = re.compile(args.grep)
        chosen = [m for m in candidates if pattern.search(f"{m.module}: {m.original} → {m.mutated}")]
    limit = max(args.wall_limit, 10 * control_s)
    rep: dict[str, Any] = {"config": cfg.description, "seed": cfg.seed, "stimulus_seed": stimulus_seed,
                           "stimulus": args.stimulus,
                           "verilog_bytes": len(text.encode()),
                           "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
                           "sequences": len(stim.sequences), "lengths": lengths.tolist(),
                           "modes": [m.name for m in stim.modes], "candidates": len(candidates),
                           "control": f"PASS in {control_s:.1f} s", "wall_limit_s": round(limit, 1),
                           "results": [], "summary": summarize([]), "wall_s": 0.0}
    doc["cores"][cfg.core] = rep
    results: list[MutantResult] = []
    for k, mut in enumerate(chosen):
        res = run_mutant(mut, text, stim_path, root / cfg.core / mut.id, top=stim.toplevel, sim=args.sim,
                         wall_limit_s=limit, keep=args.keep)
        if res.status == "survived" and args.equiv:
            res.equivalent = prove_equivalent(mut, text, root / cfg.core / f"{mut.id}-equiv")
        results.append(res)
        rep["results"].append(res.to_json())
        rep["summary"] = summarize(results)
        rep["wall_s"] = round(time.perf_counter() - t0, 1)
        write()
        how = f"{res.status} ({res.kill}, {res.mode})" if res.kill else res.status
        print(f"[{cfg.core} {k + 1}/{len(chosen)}] {mut.id} {mut.block} line {mut.line}: {how} "
              f"{res.wall_s:.1f} s  {res.message[:100]}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--core", choices=("spiking", "baseline", "both"), default="both")
    ap.add_argument("--count", type=int, default=40, help="mutants sampled per core")
    ap.add_argument("--mutant-seed", type=int, default=1, help="seed of the mutant sample")
    ap.add_argument("--sequences", type=int, default=6, help="sequences of the regression stimulus")
    ap.add_argument("--n-max", type=int, default=6, help="longest sequence (the first one)")
    ap.add_argument("--stimulus-seed", type=int, default=None,
                    help="seed of the input sequences (default: the configuration's seed, as in tests/sim)")
    ap.add_argument("--stimulus", choices=("directed", "random"), default="directed",
                    help="the regression's coverage-directed sequences (snnhw.sim.coverage, the default) or "
                         "plain random ones (the regression before coverage direction)")
    ap.add_argument("--slow-sink", type=float, default=0.0, metavar="P",
                    help="add a mode whose sink is not ready with probability P per cycle (0: no such mode)")
    ap.add_argument("--regression-modes", action="store_true",
                    help=f"exactly the modes of tests/sim (isolated, stalls, slow-sink with P = {SLOW_SINK_STALL}) "
                         "instead of isolated, stalls, back-to-back and the --slow-sink mode")
    ap.add_argument("--sim", choices=("icarus", "verilator"), default="icarus")
    ap.add_argument("--wall-limit", type=float, default=60.0,
                    help="least wall-clock seconds a mutant may run (at least 10 × the control run)")
    ap.add_argument("--only", nargs="+", default=None, metavar="ID", help="run only these mutant ids")
    ap.add_argument("--grep", default=None, metavar="REGEX",
                    help="run every mutant whose 'module: original → mutated' matches (e.g. a survivor's edit "
                         "in another configuration)")
    ap.add_argument("--hidden", type=int, default=None, help="override the configuration's H")
    ap.add_argument("--lanes", type=int, default=None, help="override the configuration's lanes")
    ap.add_argument("--fanin", type=int, default=None, help="override the configuration's fanin")
    ap.add_argument("--saturate", action="store_true",
                    help="a model whose registers saturate (synthetic.random_frozen_*(saturate=True))")
    ap.add_argument("--list", action="store_true", help="print the sampled mutants and exit")
    ap.add_argument("--keep", action="store_true", help="keep each mutant's work directory")
    ap.add_argument("--no-equiv", dest="equiv", action="store_false",
                    help="do not try a Yosys equivalence proof of each survivor's module")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "mutants", help="report directory")
    args = ap.parse_args(argv)
    if args.regression_modes and args.slow_sink:
        ap.error(f"--slow-sink and --regression-modes exclude each other (the regression's slow-sink P is "
                 f"{SLOW_SINK_STALL})")
    cores = ["spiking", "baseline"] if args.core == "both" else [args.core]

    if args.list:
        with tempfile.TemporaryDirectory() as tmp:
            for core in cores:
                model, knobs = config_of(core, args).build()
                _, verilog = generate_core(model, knobs, Path(tmp) / core)
                candidates = enumerate_mutants(verilog.read_text())
                for m in sample_mutants(candidates, args.count, args.mutant_seed):
                    print(f"{core} {m.id} {m.block} line {m.line}: {m.original} → {m.mutated}")
        return 0
    reason = simulator_missing(args.sim)
    if reason:
        raise SystemExit(f"{args.sim}: {reason}")
    args.out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"format": "snnhw-mutants", "version": 1, "command": " ".join([Path(sys.argv[0]).name]
                                                                                      + sys.argv[1:]),
                           "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                           "machine": machine(), "sim": args.sim, "mutant_seed": args.mutant_seed,
                           "sequences": args.sequences, "n_max": args.n_max, "cores": {}}
    t0 = time.perf_counter()

    def write() -> None:
        doc["wall_s"] = round(time.perf_counter() - t0, 1)
        (args.out / "mutants.json").write_text(json.dumps(doc, indent=1) + "\n")
        (args.out / "mutants.md").write_text(markdown(doc))

    with tempfile.TemporaryDirectory(prefix="snnhw-mutants-") as tmp:
        root = args.out / "work" if args.keep else Path(tmp)
        for core in cores:
            run_core(config_of(core, args), args, root, doc, write)
    doc["machine"]["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    write()
    for core, rep in doc["cores"].items():
        t = rep["summary"]["total"]
        print(f"{core}: killed {t['killed']}, survived {t['survived']}, stillborn {t['stillborn']}, "
              f"kill rate {t['kill_rate']}")
    print(f"wrote {args.out / 'mutants.json'} and {args.out / 'mutants.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

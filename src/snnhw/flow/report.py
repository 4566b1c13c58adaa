"""Build reports: ``report.json`` → ``report.md`` and PNG plots, and the multi-build comparison.

The report dict (written by the build as ``report.json``) has these sections; any section may be
absent when its step was skipped, and the Markdown says so instead of inventing a figure:

* ``model``: name, T, hidden_size, input_size, num_layers, encoding, nonspiking_gate, weight_bits.
* ``accuracy``: ``{"float_hard", "float_spiking", "int_<core kind>" ...}`` (fractions; the integer
  golden model of each core) and ``split``; ``integer_vs_float`` (builds from a checkpoint): the
  main core's integer model against the float spiking model, sequence by sequence
  (:meth:`snnhw.train.paired.PairedComparison.to_dict`: difference and interval in points).
* ``cores``: ``[{"name", "label"}, ...]``: the built core kinds (:mod:`snnhw.hw.registry`), the
  main core first; every per-core section below is keyed by these names.
* ``resources``: ``{"source": "yosys"|"vivado", "cores": {name: {...}}}`` with cell counts (LUT,
  FF, CARRY4, DSP48E1, RAMB18E1, RAMB36E1) and ``logic_depth``.
* ``latency``: ``{"N": [...], "rows": [...], "model_N_source": "...", "cores": {name: [...]},
  "serial": [...], "formulas": {name: text}, "schedules": {name: params}, "clock_mhz": f,
  "clocks_mhz": {name: f}, "clock_source": "..."}``: cycles per sequence for each N (``serial``
  is the T·N schedule of earlier spiking LSTMs on the main core's engine); each core's latency in
  µs is its cycles at its own clock ``clocks_mhz[name]`` (``clock_mhz``: the main core's). ``N[0]`` is the model's own sequence length
  (``rows[0]`` "this model", found as ``model_N_source`` says); the other rows are references
  (``rows``: "reference: <dataset>").
* ``budget`` (``--budget`` builds only): ``{"budget": F, "part", "part_resources", "explore_dir",
  "explore_grid", "inputs", "sequences", "exchange_rates", "explored": {name: points},
  "cores": {name: {"knobs", "mode", "cost_fraction", "cost_binding", "lut_equivalents",
  "resources", "cycles_mean", "cycles_max", "energy_pj", "latency_us", ...}}, "speedup",
  "energy_ratio", "clock_mhz", "clock_source"}``: the explorer point picked per core (the
  fastest costing at most F of the part), ``speedup`` = baseline ÷ spiking mean cycles and
  ``energy_ratio`` = baseline ÷ spiking energy (pJ per inference, compute) at that budget.
* ``pnr`` (ECP5 boards): ``{"device", "target_mhz", "cores": {name: brief}, "board_top": brief}``
  with ``brief`` = ``{"fmax_mhz", "met", "used": {LUT4, FF, LUTRAM, EBR, MULT18X18D, ...},
  "critical_path_ns", "critical_path_stages", "critical_path"}`` (and the board top's
  ``bitstream``): the routed figures of the open flow (``docs/open-flow.md``).
* ``timing`` (``--target-mhz`` builds only): ``{"target_mhz", "cores": {name: {"met", "fmax_mhz",
  "stopped", "rounds": [{"knobs", "fmax_mhz", "blocks", "deepened"}, ...]}}}``: the timing
  closure's rounds per core (:mod:`snnhw.flow.timing_closure`).
* ``energy``: ``{"spiking_pj", "baseline_pj", "ratio", "table_source"}`` per inference.
* ``sparsity``: ``{gate: nonzero fraction}``.
* ``verify``: ``{"passed": bool, "sequences": int, ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snnhw.errors import UserError

PAPER = {
    "energy_ratio": "2.8–5.1× lower energy than the non-spiking LSTM",
    "latency_ratio": "~4× lower latency than the non-spiking LSTM",
    "vs_serial_latency": "25.9–105.7× lower latency than the earlier (T·N) spiking LSTM",
}
"""The source paper's headline ratios, printed beside ours."""

RESOURCE_KEYS = ("LUT", "FF", "CARRY4", "DSP48E1", "RAMB18E1", "RAMB36E1", "logic_depth")


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def core_names(report: dict[str, Any]) -> list[str]:
    """The report's core kinds, the main core first."""
    return [c["name"] for c in report.get("cores", [])]


def core_labels(report: dict[str, Any]) -> dict[str, str]:
    """{core kind: label} of the report's cores."""
    return {c["name"]: c.get("label", c["name"]) for c in report.get("cores", [])}


def render_markdown(report: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """The human-readable report (Markdown) of one build."""
    plots = plots or {}
    names, labels = core_names(report), core_labels(report)
    model = report.get("model", {})
    out = [f"# snnhw build report: {model.get('name', 'model')}", ""]
    out += [
        f"T = {model.get('T')}, H = {model.get('hidden_size')}, D = {model.get('input_size')}, "
        f"layers = {model.get('num_layers')}, encoding = {model.get('encoding')}, "
        f"non-spiking gate = {model.get('nonspiking_gate')}, weights = {model.get('weight_bits')} bits.",
        "",
    ]
    verify = report.get("verify")
    out += ["## Verification", ""]
    if verify:
        state = "PASSED" if verify.get("passed") else "FAILED"
        out += [f"Bit-exact RTL vs golden model: **{state}** on {verify.get('sequences')} sequences per core "
                f"({verify.get('simulator', '?')}).", ""]
    else:
        out += ["Not run (`--no-verify`).", ""]

    acc = report.get("accuracy")
    out += ["## Accuracy", ""]
    if acc:
        out += _table(
            ["float hard LSTM", "float spiking"] + [f"integer, {labels[n]} model (golden)" for n in names],
            [[_pct(acc.get("float_hard")), _pct(acc.get("float_spiking"))]
             + [_pct(acc.get(f"int_{n}")) for n in names]],
        ) + ["", f"Split: {acc.get('split', '?')}.", ""] + _paired_line(acc.get("integer_vs_float"), labels[names[0]])
    else:
        out += ["No dataset available to this build: accuracy not measured.", ""]

    res = report.get("resources")
    out += ["## Resources (Kintex-7 XC7K325T)", ""]
    if res:
        cells = res.get("cores", {})
        shown = [n for n in names if n in cells]
        rows = [[key] + [_fmt(cells[n].get(key)) for n in shown] for key in RESOURCE_KEYS]
        out += [f"Source: {res.get('source')} ("
                + ("Vivado out-of-context results" if res.get("source") == "vivado" else
                   "**estimates**: Yosys `synth_xilinx -family xc7` cell counts, not placed or routed")
                + (f"; routed ECP5 figures in \"Routed on {report['pnr']['device']}\" below" if report.get("pnr") else "")
                + ").", ""]
        out += _table(["resource"] + [labels[n] for n in shown], rows) + [""]
        if "resources" in plots:
            out += [f"![resources]({plots['resources']})", ""]
    else:
        out += ["No synthesis tool available: resources not measured.", ""]

    budget = report.get("budget")
    if budget:
        out += _budget_section(budget, names, labels)

    lat = report.get("latency")
    out += ["## Latency", ""]
    if lat:
        clock = lat.get("clock_mhz")
        clocks = lat.get("clocks_mhz") or {}
        cycles = lat.get("cores", {})
        main, others = names[0], [n for n in names[1:] if n in cycles]
        rows = []
        for k, (n, role) in enumerate(zip(lat["N"], lat["rows"])):
            s, r = cycles[main][k], lat["serial"][k]
            rows.append([str(n), role, str(s)] + [str(cycles[o][k]) for o in others] + [str(r)]
                        + [_fmt(cycles[o][k] / s) for o in others]
                        + [_fmt(r / s)] + [_fmt(_us(cycles[c][k], clocks.get(c, clock)), 3) for c in (main, *others)])
        out += _table(["N", "row", f"{labels[main]} cycles"] + [f"{labels[o]} cycles" for o in others]
                      + ["T·N serial cycles"] + [f"{labels[o]} / {labels[main]}" for o in others]
                      + [f"serial / {labels[main]}"] + [f"{labels[c]} latency (µs)" for c in (main, *others)], rows)
        out += ["", f"N = {lat['N'][0]} is this model's sequence length ({lat['model_N_source']}); the reference "
                "rows are the sequence lengths of the paper's datasets. Event-driven cores are tabulated by "
                "their dense schedule (their cycles depend on the spikes).",
                "", f"Clock: {_clock_text(clocks or {main: clock}, labels)} ({lat.get('clock_source', 'estimate')}). "
                f"Paper: {PAPER['latency_ratio']}; {PAPER['vs_serial_latency']}.", ""]
        if "latency" in plots:
            out += [f"![latency]({plots['latency']})", ""]

    energy = report.get("energy")
    out += ["## Energy per inference (operation-count model)", ""]
    if energy:
        out += _table(["spiking (pJ)", "baseline (pJ)", "baseline / spiking", "paper"],
                      [[_fmt(energy.get("spiking_pj"), 1), _fmt(energy.get("baseline_pj"), 1),
                        _fmt(energy.get("ratio")), PAPER["energy_ratio"]]])
        out += ["", f"Energy table: {energy.get('table_source', '?')}.", ""]
        if "energy" in plots:
            out += [f"![energy]({plots['energy']})", ""]

    pnr = report.get("pnr")
    if pnr:
        out += [f"## Routed on {pnr['device']} (open flow: Yosys, nextpnr-ecp5)", ""]
        routed = [(labels.get(n, n) + " (alone)", pnr["cores"][n]) for n in names if n in pnr["cores"]]
        routed.append(("board top", pnr["board_top"]))
        out += _table(["design", "Fmax (MHz)", "LUT4", "FF", "EBR", "MULT18X18D", "critical path (ns, stages)"],
                      [[name, _fmt(b["fmax_mhz"], 1), _fmt(b["used"].get("LUT4")), _fmt(b["used"].get("FF")),
                        _fmt(b["used"].get("EBR")), _fmt(b["used"].get("MULT18X18D")),
                        f"{_fmt(b['critical_path_ns'], 1)} ({b['critical_path_stages']})"] for name, b in routed])
        out += ["", f"Each core routed alone in a wrapper that registers its ports, constrained to "
                f"{_fmt(pnr['target_mhz'])} MHz; the board top at the board's clock, bitstream "
                f"`{pnr['board_top']['bitstream']}`. These are routed figures for ECP5; the resources above "
                "are the Kintex-7 figures (Yosys estimates unless Vivado ran). Details: `pnr.json`.", ""]
        swept = [(name, b) for name, b in routed if len(b.get("seeds_fmax_mhz") or {}) > 1]
        if swept:
            out += ["Seed sweep (`--pnr-seeds`): each core's Fmax above is the fastest of its placement seeds; "
                    "every seed's Fmax (MHz): " + "; ".join(
                        f"{name}: " + ", ".join(f"{_fmt(f, 1)} (seed {s})" for s, f in b["seeds_fmax_mhz"].items())
                        for name, b in swept) + ".", ""]
    timing = report.get("timing")
    if timing:
        out += [f"### Timing closure at {timing['target_mhz']:g} MHz", ""]
        rows = []
        for name in names:
            closure = timing["cores"].get(name)
            for k, r in enumerate(closure["rounds"] if closure else []):
                stages = ", ".join(f"{knob}={v}" for knob, v in r["knobs"].items() if knob.endswith("_stages"))
                blocks = ", ".join(f"{b} {n}" for b, n in r["blocks"].items()) or "—"
                rows.append([labels.get(name, name), str(k), stages, _fmt(r["fmax_mhz"], 1), blocks,
                             r["deepened"] or ("met" if r["met"] else closure["stopped"])])
        out += _table(["core", "round", "stages", "Fmax (MHz)", "critical path cells by block", "next"], rows)
        out += ["", "Each round routes the core alone; while the target is missed one stage is added to the "
                "pipeline knob whose block holds the most cells of the critical path. The build's cores are "
                "the last round's (`timing.json`).", ""]

    board = report.get("board")
    if board:
        check = board.get("selfcheck", {})
        out += ["## Board (self-checking top)", ""]
        out += [f"{board.get('name')} ({board.get('part')}), clocked at {_fmt(board.get('clock_mhz'))} MHz: the "
                f"spiking core fed from an on-chip ROM of {check.get('sequences')} test sequences "
                f"({check.get('input_words')} input words), its {check.get('expected_words')} output words compared "
                f"on chip with the golden model's; LEDs {check.get('leds')}. Bitstream: `{board.get('how_to_build')}`.",
                ""]

    sparsity = report.get("sparsity")
    if sparsity:
        out += ["## Spike sparsity (fraction of non-zero spikes)", ""]
        out += _table(list(sparsity), [[f"{v:.3f}" for v in sparsity.values()]]) + [""]
        if "sparsity" in plots:
            out += [f"![sparsity]({plots['sparsity']})", ""]
    return "\n".join(out)


def _budget_section(budget: dict[str, Any], names: list[str], labels: dict[str, str]) -> list[str]:
    """report.md's iso-resource comparison of a ``--budget`` build: each core's picked point and
    the spiking ÷ baseline ratios at that equal budget."""
    from snnhw.flow.explore import knob_text

    cores = budget["cores"]
    rows = []
    for n in (n for n in names if n in cores):
        c = cores[n]
        rows.append([labels[n], f"{knob_text(c['knobs'], c['mode'])} ({c['mode']})",
                     f"{100 * c['cost_fraction']:.2f} % ({c['cost_binding']})", _fmt(c["lut_equivalents"], 0),
                     _fmt(c["cycles_mean"], 0), _fmt(c.get("latency_us"), 1), _fmt(c["energy_pj"], 0)])
    where = (f"the {budget['explore_grid']} grid explored into `{budget['explore_dir']}`" if budget["explore_grid"]
             else f"`{budget['explore_dir']}`")
    explored = ", ".join(f"{count} {labels.get(n, n)}" for n, count in budget["explored"].items())
    out = [f"## Iso-resource comparison: budget {100 * budget['budget']:g} % of {budget['part']}", "",
           f"Each core's knobs are its fastest explored point costing at most {100 * budget['budget']:g} % of the "
           f"{budget['part']} (cost: max over LUT, FF, DSP48E1, BRAM36 of used ÷ available, Yosys; ties: lower "
           f"energy, then lower cost), picked from {explored} points of {where}.", ""]
    out += _table(["core", "knobs (mode)", "cost: % of part (binding)", "LUT-equivalents",
                   "cycles per sequence (mean)", "latency (µs)", "energy per inference (pJ)"], rows)
    out += ["", f"Cycles and energy (compute, operation-count model): mean over {budget['sequences']} sequences "
            f"({budget['inputs']}); latency at {_clock_text(budget.get('clocks_mhz') or {}, labels)} "
            f"({budget.get('clock_source', 'estimate')}).", ""]
    if "speedup" in budget:
        out += [f"At this equal budget, spiking ÷ baseline: **{budget['speedup']:.2f}× speed-up** (baseline "
                f"cycles ÷ spiking cycles), **{budget['energy_ratio']:.2f}× energy ratio** (baseline pJ ÷ spiking pJ; "
                "above 1 the spiking core uses less).", ""]
    return out


def make_plots(report: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write the report's PNG plots into ``out_dir``; returns {plot name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}

    def save(name: str, fig: "plt.Figure") -> str:
        """Write ``<name>.png`` into ``out_dir``, close the figure, return the file name."""
        fig.tight_layout()
        fig.savefig(out_dir / f"{name}.png", dpi=110)
        plt.close(fig)
        return f"{name}.png"
    names, labels = core_names(report), core_labels(report)
    res = report.get("resources")
    cells = (res or {}).get("cores", {})
    shown = [n for n in names if cells.get(n)]
    if shown:
        keys = [k for k in ("LUT", "FF", "CARRY4", "DSP48E1", "RAMB18E1", "RAMB36E1")
                if any(k in cells[n] for n in shown)]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        xs = range(len(keys))
        width = 0.8 / len(shown)
        for i, n in enumerate(shown):
            ax.bar([x - 0.4 + width * (i + 0.5) for x in xs], [cells[n].get(k, 0) for k in keys], width=width,
                   label=labels[n])
        ax.set_xticks(list(xs), keys)
        ax.set_yscale("symlog")
        ax.set_ylabel("cells")
        ax.set_title(f"Resources ({res.get('source')})")
        ax.legend()
        plots["resources"] = save("resources", fig)
    lat = report.get("latency")
    if lat:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        order = sorted(range(len(lat["N"])), key=lambda k: lat["N"][k])
        ns = [lat["N"][k] for k in order]
        for n, marker in zip([n for n in names if n in lat.get("cores", {})], "osdvp*"):
            ax.plot(ns, [lat["cores"][n][k] for k in order], f"{marker}-", label=labels[n])
        ax.plot(ns, [lat["serial"][k] for k in order], "^--", label="T·N serial spiking schedule")
        ax.axvline(lat["N"][0], color="grey", linestyle=":", label=f"this model's N = {lat['N'][0]}")
        ax.set_xlabel("sequence length N (the others: reference lengths)")
        ax.set_ylabel("cycles per sequence")
        ax.set_yscale("log")
        ax.set_title("Latency vs sequence length")
        ax.legend()
        plots["latency"] = save("latency", fig)
    energy = report.get("energy")
    if energy and energy.get("spiking_pj") is not None and energy.get("baseline_pj") is not None:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        ax.bar(["spiking core", "MAC baseline"], [energy["spiking_pj"], energy["baseline_pj"]], color=["C0", "C1"])
        ax.set_ylabel("pJ per inference")
        ax.set_title(f"Energy (baseline / spiking = {energy['baseline_pj'] / energy['spiking_pj']:.2f}×)")
        plots["energy"] = save("energy", fig)
    sparsity = report.get("sparsity")
    if sparsity:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.bar(list(sparsity), list(sparsity.values()))
        ax.set_ylim(0, 1)
        ax.set_ylabel("non-zero fraction")
        ax.set_title("Spike activity per gate")
        plots["sparsity"] = save("sparsity", fig)
    return plots


def _paired_line(paired: dict[str, Any] | None, label: str) -> list[str]:
    """The integer-vs-float comparison as a sentence (nothing when the build has no checkpoint)."""
    if not paired:
        return []
    lo, hi = paired["interval95_points"]
    return [f"Integer ({label}) − float spiking model, sequence by sequence: "
            f"{paired['difference_points']:+.2f} points (95 % interval {lo:+.2f} to {hi:+.2f}); "
            f"{paired['changed']} of {paired['n']} sequences decided differently, "
            f"{paired['only_model_right']} right only under the integer model and "
            f"{paired['only_reference_right']} only under the float one; McNemar exact p = {paired['mcnemar_p']:.3g}. "
            "A difference inside its interval is not resolved by these data.", ""]


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write ``report.json``, the plots and ``report.md`` into ``out_dir``; returns the file paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = make_plots(report, out_dir)
    (out_dir / "report.json").write_text(json.dumps({**report, "plots": plots}, indent=2))
    (out_dir / "report.md").write_text(render_markdown(report, plots))
    return {"json": str(out_dir / "report.json"), "markdown": str(out_dir / "report.md"),
            **{k: str(out_dir / v) for k, v in plots.items()}}


def load_report(build_dir: Path) -> dict[str, Any]:
    """``report.json`` of a build directory; a clear error when it is not a build."""
    path = Path(build_dir) / "report.json"
    if not path.is_file():
        raise UserError(f"{build_dir} is not an snnhw build directory (no report.json)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from None


def _us(cycles: float | None, clock_mhz: float | None) -> float | None:
    """Latency in µs of ``cycles`` at ``clock_mhz``, or None when either is unknown."""
    return cycles / clock_mhz if cycles is not None and clock_mhz else None


def _clock_text(clocks: dict[str, float | None], labels: dict[str, str]) -> str:
    """``"156 MHz"`` when every core runs at one clock, else ``"spiking core 30.3 MHz, … "``."""
    values = {_fmt(v, 1) for v in clocks.values()}
    if len(values) <= 1:
        return f"{next(iter(values), '—')} MHz"
    return ", ".join(f"{labels.get(k, k)} {_fmt(v, 1)} MHz" for k, v in clocks.items())


def _clock_source_short(source: str | None) -> str:
    """``routed`` / ``Vivado`` / ``estimate`` from a latency section's ``clock_source``."""
    if not source:
        return "—"
    return "routed" if source.startswith("routed") else "Vivado" if source.startswith("Vivado") else "estimate"


def comparison_table(builds: dict[str, dict[str, Any]]) -> str:
    """A Markdown table comparing several builds (one row each): per core kind its LUT, DSP,
    cycles at the model's own N (the latency table's first row), clock (MHz: routed or achieved
    when the build measured it, else the target) and latency (µs), and the budget the knobs were
    picked for (— when they were given or automatic)."""
    names: list[str] = []
    labels: dict[str, str] = {}
    for rep in builds.values():
        for n in core_names(rep):
            if n not in names:
                names.append(n)
        labels.update(core_labels(rep))
    header = ["build", "T", "H", "int spiking acc"]
    for n in names:
        header += [f"{labels[n]} LUT", f"{labels[n]} DSP", f"{labels[n]} cycles", f"{labels[n]} MHz",
                   f"{labels[n]} µs"]
    header += ["N", "clock source", "energy ratio", "budget", "verified"]
    rows = []
    for name, rep in builds.items():
        model = rep.get("model", {})
        acc = rep.get("accuracy") or {}
        cells = (rep.get("resources") or {}).get("cores", {})
        lat = rep.get("latency") or {}
        energy = rep.get("energy") or {}
        verify = rep.get("verify")
        row = [name, _fmt(model.get("T")), _fmt(model.get("hidden_size")), _pct(acc.get("int_spiking"))]
        for n in names:
            cyc = lat.get("cores", {}).get(n)
            clock = (lat.get("clocks_mhz") or {}).get(n, lat.get("clock_mhz"))
            row += [_fmt(cells.get(n, {}).get("LUT")), _fmt(cells.get(n, {}).get("DSP48E1")),
                    _fmt(cyc[0] if cyc else None), _fmt(clock, 1), _fmt(_us(cyc[0] if cyc else None, clock), 1)]
        budget = rep.get("budget")
        row += [_fmt(lat["N"][0] if lat else None), _clock_source_short(lat.get("clock_source")),
                _fmt(energy.get("ratio")),
                f"{100 * budget['budget']:g} %" if budget else "—",
                "—" if not verify else ("pass" if verify.get("passed") else "FAIL")]
        rows.append(row)
    return "\n".join(_table(header, rows))

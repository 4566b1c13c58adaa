"""Build reports: ``report.json`` → ``report.md`` and PNG plots, and the multi-build comparison.

The report dict (written by the build as ``report.json``) has these sections; any section may be
absent when its step was skipped, and the Markdown says so instead of inventing a figure:

* ``model``: name, T, hidden_size, input_size, num_layers, encoding, nonspiking_gate, weight_bits.
* ``accuracy``: ``{"float_hard", "float_spiking", "int_spiking", "int_baseline"}`` (fractions) and
  ``split``.
* ``resources``: ``{"source": "yosys"|"vivado", "spiking": {...}, "baseline": {...}}`` with cell
  counts (LUT, FF, CARRY4, DSP48E1, RAMB18E1, RAMB36E1) and ``logic_depth``.
* ``latency``: ``{"N": [...], "spiking": [...], "baseline": [...], "serial": [...],
  "clock_mhz": f, "clock_source": "..."}``: cycles per sequence for each N (``serial`` is the
  T·N schedule of earlier spiking LSTMs on the same engine).
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


def render_markdown(report: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """The human-readable report (Markdown) of one build."""
    plots = plots or {}
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
            ["float hard LSTM", "float spiking", "integer spiking (golden)", "integer baseline (golden)"],
            [[_pct(acc.get("float_hard")), _pct(acc.get("float_spiking")), _pct(acc.get("int_spiking")),
              _pct(acc.get("int_baseline"))]],
        ) + ["", f"Split: {acc.get('split', '?')}.", ""]
    else:
        out += ["No dataset available to this build: accuracy not measured.", ""]

    res = report.get("resources")
    out += ["## Resources", ""]
    if res:
        rows = [[key, _fmt(res.get("spiking", {}).get(key)), _fmt(res.get("baseline", {}).get(key))]
                for key in RESOURCE_KEYS]
        out += [f"Source: {res.get('source')} (estimates unless the source is vivado).", ""]
        out += _table(["resource", "spiking core", "MAC baseline"], rows) + [""]
        if "resources" in plots:
            out += [f"![resources]({plots['resources']})", ""]
    else:
        out += ["No synthesis tool available: resources not measured.", ""]

    lat = report.get("latency")
    out += ["## Latency", ""]
    if lat:
        clock = lat.get("clock_mhz")
        rows = []
        for k, n in enumerate(lat["N"]):
            s, b, r = lat["spiking"][k], lat["baseline"][k], lat["serial"][k]
            rows.append([str(n), str(s), _fmt(b), str(r), _fmt(b / s if b is not None else None), _fmt(r / s),
                         _fmt(s / clock if clock else None, 3)])
        out += _table(["N", "spiking cycles", "baseline cycles", "T·N serial cycles", "baseline / spiking",
                       "serial / spiking", "spiking latency (µs)"], rows)
        out += ["", f"Clock: {_fmt(clock)} MHz ({lat.get('clock_source', 'estimate')}). "
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
    res = report.get("resources")
    if res and res.get("spiking") and res.get("baseline"):
        keys = [k for k in ("LUT", "FF", "CARRY4", "DSP48E1", "RAMB18E1", "RAMB36E1")
                if k in res["spiking"] or k in res["baseline"]]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        xs = range(len(keys))
        ax.bar([x - 0.2 for x in xs], [res["spiking"].get(k, 0) for k in keys], width=0.4, label="spiking core")
        ax.bar([x + 0.2 for x in xs], [res["baseline"].get(k, 0) for k in keys], width=0.4, label="MAC baseline")
        ax.set_xticks(list(xs), keys)
        ax.set_yscale("symlog")
        ax.set_ylabel("cells")
        ax.set_title(f"Resources ({res.get('source')})")
        ax.legend()
        plots["resources"] = save("resources", fig)
    lat = report.get("latency")
    if lat:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(lat["N"], lat["spiking"], "o-", label="spiking wavefront (T+N−1 steps)")
        ax.plot(lat["N"], lat["baseline"], "s-", label="MAC baseline (sequential)")
        ax.plot(lat["N"], lat["serial"], "^--", label="T·N serial spiking schedule")
        ax.set_xlabel("sequence length N")
        ax.set_ylabel("cycles per sequence")
        ax.set_yscale("log")
        ax.set_title("Latency vs sequence length")
        ax.legend()
        plots["latency"] = save("latency", fig)
    energy = report.get("energy")
    if energy and energy.get("spiking_pj") is not None and energy.get("baseline_pj") is not None:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        ax.bar(["spiking", "MAC baseline"], [energy["spiking_pj"], energy["baseline_pj"]], color=["C0", "C1"])
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


def comparison_table(builds: dict[str, dict[str, Any]]) -> str:
    """A Markdown table comparing several builds (one row each)."""
    header = ["build", "T", "H", "int spiking acc", "spiking LUT", "baseline LUT", "spiking DSP",
              "cycles spk/base (largest N)", "energy ratio", "verified"]
    rows = []
    for name, rep in builds.items():
        model = rep.get("model", {})
        acc = rep.get("accuracy") or {}
        res = rep.get("resources") or {}
        lat = rep.get("latency")
        energy = rep.get("energy") or {}
        verify = rep.get("verify")
        cycles = f"{lat['spiking'][-1]}/{lat['baseline'][-1]} (N={lat['N'][-1]})" if lat else "—"
        rows.append([
            name, _fmt(model.get("T")), _fmt(model.get("hidden_size")), _pct(acc.get("int_spiking")),
            _fmt(res.get("spiking", {}).get("LUT")), _fmt(res.get("baseline", {}).get("LUT")),
            _fmt(res.get("spiking", {}).get("DSP48E1")), cycles, _fmt(energy.get("ratio")),
            "—" if not verify else ("pass" if verify.get("passed") else "FAIL"),
        ])
    return "\n".join(_table(header, rows))

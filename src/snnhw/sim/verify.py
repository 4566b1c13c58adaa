"""Bit-exact verification of generated cores against the golden model (``snnhw verify``).

For each core (the spiking core, and the MAC baseline when given): take or generate its
Verilog, build the stimulus of K sequences (the model's dataset test split when a data
directory is given, else seeded random inputs), run the cocotb testbench (``sim/tb_core.py``)
in the standard modes (isolated sequences at full rate with exact cycle counts; back to back
under random idle/backpressure), and collect the outcome: pass/fail, the first mismatch
located (mode, sequence and sample, output word and its name, expected vs got), measured vs
published cycles per sequence, simulator wall times, and optionally the switching activity
(toggle counts and a SAIF file) from the recorded waveform.

Outputs in the report directory: ``verify.json``, ``verify.junit.xml`` and per core a work
directory with the stimulus, the testbench report, the simulator logs (and the waveform,
``activity.json`` and ``activity.saif`` with ``waves``).

The memory contents (weights, biases) are read from ``$readmemh`` files at run time and the
compiled simulators are kept in :func:`~snnhw.sim.runner.sim_build_cache`, so verifying another
model of the same shape, knobs and logic constants reuses an earlier build.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnhw.errors import UserError
from snnhw.quant.frozen import FrozenBaseline, FrozenSpiking
from snnhw.sim.junit import JUnitCase, write_junit
from snnhw.sim.runner import (
    default_simulator,
    sim_build_cache,
    simulate,
    simulator_missing,
)
from snnhw.sim.stimulus import Mode, build_stimulus, default_modes, describe_mismatch

VERIFY_FORMAT = "snnhw-verify"
VERIFY_VERSION = 1


@dataclass
class CoreReport:
    """Verification outcome of one core.

    Attributes:
        kind: the core kind (:mod:`snnhw.hw.registry`).
        top: HDL top module.
        verilog: the Verilog file simulated.
        knobs: the core's knobs as built (from its manifest or the request).
        simulator: "icarus" or "verilator".
        passed: every output word and every checked cycle count matched.
        sequences: sequences driven per mode.
        modes: names of the run modes.
        message: "" or the one-line location of the first mismatch.
        first_mismatch: the testbench's located mismatch (dict) or None.
        cycles: per sequence (isolated mode): sample, N, expected and measured cycles.
        build_s / test_s: simulator build and run wall time (s).
        sim_cycles: clock cycles simulated over all modes.
        wall_per_sequence_s: testbench wall time of the isolated mode / sequences.
        activity: toggle summary and SAIF path (waves only), else None.
        work_dir: directory with stimulus, logs and testbench report.
        trace_records: debug cores (``trace``): trace records compared in each mode, else None.
        build_reused: the compiled simulator of an earlier run with the same structure served
            (:func:`snnhw.sim.runner.simulate`; ``build_s`` ≈ 0).
    """

    kind: str
    top: str
    verilog: str
    knobs: dict[str, Any]
    simulator: str
    passed: bool
    sequences: int
    modes: list[str]
    message: str
    first_mismatch: dict[str, Any] | None
    cycles: list[dict[str, Any]]
    build_s: float
    test_s: float
    sim_cycles: int
    wall_per_sequence_s: float | None
    activity: dict[str, Any] | None
    work_dir: str
    trace_records: int | None = None
    build_reused: bool = False


def failure_message(m: dict[str, Any] | None, messages: list[str]) -> str:
    """One line locating a failure: the testbench's mismatch, else the simulator's first message."""
    if m is None:
        return messages[0] if messages else "simulation failed without a report"
    return describe_mismatch(m)


def verify_core(
    model: FrozenSpiking | FrozenBaseline,
    schedule: Any,
    verilog: Path,
    inputs: np.ndarray,
    lengths: np.ndarray,
    work_dir: Path,
    *,
    knobs: Any,
    sim: str | None = None,
    waves: bool = False,
    modes: list[Mode] | None = None,
    sample_ids: list[int] | None = None,
    build_dir: Path | None = None,
) -> CoreReport:
    """Simulate ``verilog`` (generated from ``model`` with ``knobs``) on a batch; compare with the golden model.

    Args:
        model: the frozen model.
        schedule: the configuration's schedule (:mod:`snnhw.hw.schedule`): the expected cycles.
        verilog: the generated Verilog file.
        inputs: int64 [B, N, D] quantized inputs (or [B, N, T, D] spikes for input mode "spikes").
        lengths: int64 [B].
        work_dir: this run's directory.
        knobs: the configuration's resolved knobs (recorded in the report).
        sim: simulator (default :func:`default_simulator`).
        waves: record a waveform and derive the switching activity and a SAIF file.
        modes: run modes (default :func:`default_modes` seeded 0).
        sample_ids: the samples' source indices.
        build_dir: root of the compiled simulators (default inside ``work_dir``;
            :func:`snnhw.sim.runner.simulate`).
    """
    sim = sim or default_simulator()
    stim = build_stimulus(model, schedule, inputs, lengths, modes=modes if modes is not None else default_modes(0),
                          sample_ids=sample_ids)
    run = simulate(stim, [Path(verilog)], Path(work_dir), sim=sim, waves=waves, build_dir=build_dir)
    modes_out = run.report.get("modes", [])
    cycles = []
    wall = None
    for m in modes_out:
        if m.get("check_cycles"):
            cycles = [{"sample": s["sample"], "n": s["n"], "expected": s["cycles_expected"],
                       "measured": s["cycles_measured"], "status": s["status"]} for s in m["sequences"]]
            wall = m["wall_s"] / max(1, len(m["sequences"]))
            break
    activity = None
    if waves and run.sim.waves is not None:
        from snnhw.sim.waves import activity_report

        activity = activity_report(run.sim.waves, Path(work_dir), design=stim.toplevel)
        activity.pop("per_signal", None)
    return CoreReport(
        kind=stim.core,
        top=stim.toplevel,
        verilog=str(verilog),
        knobs=knobs.to_manifest(),
        simulator=sim,
        passed=run.passed,
        sequences=len(stim.sequences),
        modes=[m.name for m in stim.modes],
        message="" if run.passed else failure_message(run.first_mismatch, run.sim.messages),
        first_mismatch=run.first_mismatch,
        cycles=cycles,
        build_s=round(run.sim.build_s, 3),
        test_s=round(run.sim.test_s, 3),
        sim_cycles=sum(m.get("sim_cycles", 0) for m in modes_out),
        wall_per_sequence_s=round(wall, 4) if wall is not None else None,
        activity=activity,
        work_dir=str(work_dir),
        trace_records=(sum(len(s.trace_records) for s in stim.sequences) if stim.trace_fields is not None else None),
        build_reused=run.sim.build_reused,
    )


def _manifest_knobs(manifest_path: Path, spec: Any) -> tuple[Any, str | None]:
    """The knobs (``spec``'s knob class) and model hash recorded in a core manifest."""
    if not manifest_path.is_file():
        raise UserError(f"{manifest_path} is missing: --rtl needs the manifests written by snnhw generate")
    try:
        doc = json.loads(manifest_path.read_text())
        knobs = spec.knobs_type.from_manifest(doc.get("knobs", {}))
    except (ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{manifest_path} is not a valid core manifest: {exc}") from None
    return knobs, doc.get("source_model", {}).get("sha256")


def dataset_inputs(model: FrozenSpiking | FrozenBaseline, data_dir: Path | None, samples: int,
                   split: str = "test") -> tuple[np.ndarray, np.ndarray, list[int], str]:
    """The first ``samples`` sequences of the model's dataset split, quantized for ``model``.

    The dataset is rebuilt from the data settings (``meta["data_meta"]``) and normalisation
    (``meta["normalisation"]``) that ``snnhw quantize`` records in the frozen file;
    ``data_dir`` overrides the stored path. Returns (x_q [K, N, D], lengths [K], sample
    indices, description).
    """
    from snnhw.quant.quantizer import quantize_input
    from snnhw.train.checkpoint import rebuild_data

    meta = model.meta or {}
    if not isinstance(meta.get("data_meta"), dict):
        raise UserError("the model file records no data settings (data_meta); verify with random inputs "
                        "(omit --data-dir)")
    bundle = rebuild_data(meta["data_meta"], data_dir, normalisation=meta.get("normalisation") or None,
                          progress=False)
    ds = getattr(bundle, split)
    if ds.n_features != model.input_size:
        raise UserError(f"the data have {ds.n_features} features, the model {model.input_size}")
    count = min(samples, len(ds))
    lengths = ds.lengths[:count].astype(np.int64)
    n_max = int(lengths.max())
    x_q = quantize_input(model, ds.x[:count, :n_max])
    x_q = x_q * (np.arange(n_max)[None, :, None] < lengths[:, None, None])
    return (x_q.astype(np.int64), lengths, list(range(count)),
            f"{meta['data_meta'].get('dataset')} {split} split, first {count}")


def _inputs_for(model: FrozenSpiking | FrozenBaseline, knobs: Any, data_dir: Path | None, samples: int,
                seed: int, length: int) -> tuple[np.ndarray, np.ndarray, list[int], str]:
    """Inputs of one core: dataset samples (quantized; rate-encoded when the core takes spikes) or
    seeded random sequences, for a spiking model chosen among 16 × as many to cover the most golden
    events (:func:`snnhw.sim.coverage.directed_inputs`)."""
    from snnhw.sim.coverage import directed_inputs

    spikes = getattr(knobs, "input_mode", None) == "spikes"
    if data_dir is not None:
        x, lengths, ids, what = dataset_inputs(model, data_dir, samples)
        if spikes:
            from snnhw.quant.golden import rate_encode

            x = rate_encode(model, x)
        return x, lengths, ids, what
    x, lengths, stats = directed_inputs(model, seed, samples, length, spikes=spikes)
    if not stats["pool_events"]:
        return x, lengths, list(range(samples)), f"random inputs, seed {seed}, N ≤ {length}"
    return x, lengths, list(range(samples)), (
        f"random inputs, seed {seed}, N ≤ {length}, chosen for coverage: {stats['covered_events']} of "
        f"{stats['pool_events']} golden events (the first {samples}: {stats['random_events']})")


@dataclass
class VerifyReport:
    """Everything ``snnhw verify`` found (written as ``verify.json``)."""

    passed: bool
    simulator: str
    inputs: dict[str, str]
    cores: list[CoreReport] = field(default_factory=list)
    rtl_dir: str = ""
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``verify.json`` document."""
        return {"format": VERIFY_FORMAT, "version": VERIFY_VERSION, **asdict(self)}


def verify(
    models: dict[str, Any],
    out_dir: Path,
    *,
    rtl_dir: Path | None = None,
    sim: str | None = None,
    samples: int = 8,
    data_dir: Path | None = None,
    waves: bool = False,
    knobs: dict[str, Any] | None = None,
    seed: int = 0,
    length: int = 8,
    progress: bool = True,
) -> VerifyReport:
    """Verify the cores of the given frozen models bit for bit.

    Args:
        models: the frozen model of each core kind to verify (:mod:`snnhw.hw.registry`), e.g.
            ``{"spiking": load_frozen("m.snnhw"), "baseline": load_frozen("m.baseline.snnhw")}``.
        out_dir: report directory (``verify.json``, ``verify.junit.xml``, per-core work dirs).
        rtl_dir: a directory written by ``snnhw generate`` (the spec's Verilog file and manifest
            per core: the knobs are read from the manifests and the model hash must match); None
            generates into ``out_dir/rtl`` with ``knobs``.
        sim: "icarus" or "verilator" (default ``$SNNHW_SIM`` or icarus).
        samples: K sequences per core.
        data_dir: the model's dataset location (its test split is used); None: random inputs.
        waves: record waveforms; write toggle counts and a SAIF file per core.
        knobs: knobs per core kind when generating (None or missing: automatic); with ``rtl_dir``
            the manifests give them, and only ``trace`` is checked: a core asked to trace must
            have the trace port.
        seed: seed of the random inputs and of the stall patterns.
        length: N of the random inputs (lengths vary in 1..N).
        progress: tqdm bar over the cores.
    """
    from tqdm import tqdm

    from snnhw.hw.generate import generate
    from snnhw.hw.manifest import model_hash
    from snnhw.hw.registry import core_spec

    t0 = time.perf_counter()
    sim = sim or default_simulator()
    reason = simulator_missing(sim)
    if reason:
        raise UserError(f"{sim}: {reason}")
    if samples < 1:
        raise UserError("--samples must be at least 1")
    if not models:
        raise UserError("nothing to verify: give at least one frozen model")
    knobs = knobs or {}
    loaded = []
    for name, model in models.items():
        spec = core_spec(name)
        if not spec.accepts(model):
            raise UserError(f"the {spec.label} takes a {spec.model_type.__name__}, not a {type(model).__name__}")
        try:
            loaded.append((spec, model, spec.knobs(model, knobs.get(name))))
        except (ValueError, TypeError) as exc:
            raise UserError(f"{spec.label}: {exc}") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Any, FrozenSpiking | FrozenBaseline, Path, Any]] = []
    if rtl_dir is not None:
        rtl = Path(rtl_dir)
        for spec, model, asked in loaded:
            vfile = rtl / spec.verilog_file
            if not vfile.is_file():
                raise UserError(f"{vfile} does not exist (--rtl must hold the output of snnhw generate)")
            k, digest = _manifest_knobs(rtl / spec.manifest_file, spec)
            if digest is not None and digest != model_hash(model):
                raise UserError(f"{vfile} was generated from a different {spec.name} model than the one given")
            if getattr(asked, "trace", False) and not getattr(k, "trace", False):
                raise UserError(f"{vfile} has no trace port: generate it with snnhw generate --trace")
            jobs.append((spec, model, vfile, k.resolved(model)))
    else:
        rtl = out_dir / "rtl"
        try:
            summary = generate([(model, k) for _, model, k in loaded], rtl, progress=progress)
        except (ValueError, TypeError) as exc:
            raise UserError(str(exc)) from None
        for spec, model, k in loaded:
            jobs.append((spec, model, Path(summary["cores"][spec.name]["verilog"]), k))
    reports: list[CoreReport] = []
    inputs_desc: dict[str, str] = {}
    for spec, model, vfile, k in tqdm(jobs, desc="verify", unit="core", disable=not progress):
        x, lengths, ids, what = _inputs_for(model, k, data_dir, samples, seed, length)
        inputs_desc[spec.name] = what
        reports.append(verify_core(model, spec.schedule(model, k), vfile, x, lengths, out_dir / spec.name, knobs=k,
                                   sim=sim, waves=waves, modes=default_modes(seed), sample_ids=ids,
                                   build_dir=sim_build_cache()))
    report = VerifyReport(passed=all(r.passed for r in reports), simulator=sim, inputs=inputs_desc, cores=reports,
                          rtl_dir=str(rtl), wall_s=round(time.perf_counter() - t0, 3))
    (out_dir / "verify.json").write_text(json.dumps(report.to_json(), indent=1) + "\n")
    cases = []
    for r in reports:
        knob_text = ",".join(f"{key}={value}" for key, value in r.knobs.items() if value is not None)
        cycles_text = "\n".join(f"sample {c['sample']} N={c['n']}: cycles expected {c['expected']} "
                                f"measured {c['measured']} ({c['status']})" for c in r.cycles)
        cases.append(JUnitCase(name=f"{r.top}[{knob_text}]", classname=f"snnhw.verify.{r.kind}",
                               time_s=r.build_s + r.test_s, failure=r.message or None,
                               properties={"simulator": r.simulator, "sequences": str(r.sequences),
                                           "verilog": r.verilog},
                               system_out=cycles_text))
    write_junit(out_dir / "verify.junit.xml", "snnhw.verify", cases)
    return report

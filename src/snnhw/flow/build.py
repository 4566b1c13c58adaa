# amaranth: UnusedElaboratable=no
"""``snnhw build``: a trained model → verified cores, a self-checking board top, estimates, reports.

Steps (each writes ``<out>/<step>.json``: ``status`` ok / skipped / failed, ``reason``,
``seconds``, ``artefacts`` and the step's figures; see ``docs/build.md``):

1. ``load``: a float spiking checkpoint (quantized here, with the MAC baseline from its hard-LSTM
   source) or frozen ``.snnhw`` model(s) → ``model/spiking.snnhw``, ``model/baseline.snnhw``;
   the knobs (given or automatic) unless a budget picks them;
2. ``budget``: with ``--budget F`` only, each core's knobs from the explorer
   (:mod:`snnhw.flow.explore`, run into ``<out>/explore/`` or read from ``--explore-dir``): the
   fastest explored point costing at most F of the board's part;
3. ``timing``: with ``--target-mhz F`` only (ECP5 boards), each core routed alone and its
   pipeline deepened where the routed critical path runs until it meets F
   (:mod:`snnhw.flow.timing_closure`, rounds in ``timing/``);
4. ``generate``: both cores' Verilog and manifests (:func:`snnhw.hw.generate.generate`) in ``rtl/``;
5. ``verify``: a short bit-exact cocotb run of both cores (:func:`snnhw.sim.verify.verify_core`) on
   a few sequences, with switching activity (SAIF) from the waveform; a mismatch fails the build;
6. ``board``: the self-checking top (:class:`~snnhw.flow.selfcheck.SelfCheckTop` with ROMs of test
   sequences and the golden model's expected words) wrapped for the board
   (:class:`~snnhw.flow.selfcheck.BoardSelfCheck`) and written as the board's build plan
   (``board/``, amaranth-boards; no Vivado needed), plus out-of-context Vivado scripts for each
   core alone (``vivado/``);
7. ``yosys``: ``synth_xilinx -family xc7`` of each core: LUT, FF, CARRY4, DSP48E1, BRAM, logic depth
   (both runs start in the background as soon as ``generate`` is done, overlapping steps 5–6);
8. ``pnr``: ECP5 boards, each core placed and routed alone (its own Fmax) and the board top to a
   bitstream with the open flow (:mod:`snnhw.flow.ecp5`);
9. ``vivado``: with ``--vivado`` and ``vivado`` on PATH, the out-of-context runs (utilisation,
   achieved clock, power with the simulation's activity) and the board bitstream;
10. ``reports``: ``report.json``, ``report.md`` and PNG plots (:mod:`snnhw.flow.report`); the
    step's own record is ``reports.json`` (``report.json`` is the report itself).

Missing tools skip the steps that need them, with the reason in the step's JSON; nothing is
estimated in their place.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from snnhw.errors import UserError, option_error
from snnhw.flow.default_model import Samples
from snnhw.hw.registry import core_spec, core_specs, main_core, spec_for_model

STEPS = ("load", "budget", "timing", "generate", "verify", "board", "yosys", "pnr", "vivado", "reports")
"""The build steps, in order; each writes ``<out>/<step>.json``."""

REFERENCE_N: dict[int, str] = {28: "T-MNIST rows", 81: "GSC frames", 128: "UCI HAR samples"}
"""Reference rows of the latency table after the model's own N: the sequence lengths of the
source paper's datasets, for comparison with its ratios."""

RANDOM_N = 16
"""Longest random test sequence the build drives when it has no evaluation data (capped at the
quantizer's N_max)."""

DEFAULT_BUDGET = 0.25
"""``--budget`` without a value: a quarter of the part (``docs/build.md``, "Building to a
resource budget")."""

BUDGET_FIELDS = ("knobs", "mode", "units", "unit_name", "cycles_mean", "cycles_max", "utilisation_mean",
                 "energy_pj", "energy_with_memory_pj", "resources", "cost_fraction", "cost_binding",
                 "lut_equivalents", "key")
"""What the ``budget`` record keeps of each picked explorer point."""

PNR_TARGET_MHZ = 100.0
"""Clock constraint (MHz) of the per-core ECP5 routes when ``--clock-mhz`` is not given."""

PNR_WORKERS = 2
"""nextpnr runs at a time in the ``pnr`` step (each uses one core)."""

BOARD_TOP = "snnhw_top"
"""Name of the board design (``board/snnhw_top.v``, ``board/build_snnhw_top.sh``)."""


class StepSkipped(Exception):
    """Raised inside a step to record ``skipped`` with the message as the reason."""


class BuildFailed(Exception):
    """A step found the design wrong (e.g. an RTL/golden mismatch): the build exits non-zero.

    ``details`` (the step's figures, e.g. the located mismatch) go into the step's JSON.
    """

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


@dataclass
class BuildOptions:
    """Everything ``snnhw build`` takes (see ``snnhw build --help`` for each flag).

    Attributes:
        models: a float spiking checkpoint, or one or two frozen ``.snnhw`` files (spiking and/or
            baseline); empty for the bundled default model.
        baseline_model: the hard-LSTM checkpoint (or frozen baseline) of the MAC baseline;
            default: the spiking checkpoint's recorded source.
        board: board name or alias (``boards/*.json``).
        out_dir: output directory (default ``build/<model name>``).
        data_dir: dataset location (default: the one recorded in the model).
        verify: run the short bit-exact verification.
        verify_sequences: sequences per core in the verification.
        verify_length: elements per verification sequence: the first ``verify_length`` elements of
            each test sequence (0: whole sequences); the golden model's expectations are computed
            for exactly the sequences driven, so a prefix is verified bit for bit like any sequence.
        verify_stalls: also run the sequences back to back under random source idles and sink
            backpressure (the isolated full-rate run with exact cycle counts always runs).
        selfcheck_sequences: test sequences in the board top's ROM.
        waves: record waveforms during verification (toggle counts and SAIF for Vivado's power).
        yosys / vivado: run those tools (Yosys when found; Vivado only when asked and found).
        pnr: with an ECP5 board, place and route each core alone and the board top to a
            bitstream with the open flow (:mod:`snnhw.flow.ecp5`; when the tools are found).
        simulator: "icarus" or "verilator" (default: snnhw.sim's default).
        knobs: the knobs of each core kind (:mod:`snnhw.hw.knobs`; a missing kind or a ``None``
            knob is sized to the model by the one automatic rule, ``CoreKnobs.resolved``).
        weight_bits, input_bits, act_bits: quantizer widths (checkpoint input only; weight and
            input width ``None``: the grid a ``--qat`` checkpoint was trained on, else 8; a
            ``--qat`` checkpoint also gives its leak terms, input percentile and input scale).
        calib_samples: training sequences used to calibrate the quantizer.
        clock_mhz: target clock of the out-of-context runs: Vivado scripts (default: the board's
            clock) and ECP5 per-core routes (default ``PNR_TARGET_MHZ``).
        seed: seeds calibration subsets, random inputs and stall patterns.
        progress: per-step lines and tqdm bars.
        budget: with a value (0 < F ≤ 1), each core's knobs are the fastest explored point costing
            at most F of the board's part (``knobs`` must then be left automatic); None: the knobs
            are ``knobs``.
        explore_dir: with ``budget``, an existing ``snnhw explore`` output to pick from (read
            only); None: explore into ``<out>/explore/`` (resumable).
        explore_grid: the grid the build explores (:data:`~snnhw.flow.explore.GRID_SIZES`; None:
            ``small``).
        target_mhz: with a value (ECP5 boards), each core's pipeline is deepened where its routed
            critical path runs until it meets this clock (:mod:`snnhw.flow.timing_closure`), and
            the per-core routes use it as their target; None: the knobs' stages as given.
        pnr_seeds: placement seeds per core in the ``pnr`` step (≥ 1): each core is routed with
            nextpnr seeds 1..K and the fastest route is kept, every seed's Fmax recorded
            (:func:`~snnhw.flow.ecp5.best_of_seeds`).
    """

    models: list[Path] = field(default_factory=list)
    baseline_model: Path | None = None
    board: str = "kintex7"
    out_dir: Path | None = None
    data_dir: Path | None = None
    verify: bool = True
    verify_sequences: int = 2
    verify_length: int = 8
    verify_stalls: bool = False
    selfcheck_sequences: int = 2
    waves: bool = True
    yosys: bool = True
    vivado: bool = False
    pnr: bool = True
    simulator: str | None = None
    knobs: dict[str, Any] = field(default_factory=dict)
    weight_bits: int | None = None
    input_bits: int | None = None
    act_bits: int = 8
    calib_samples: int = 512
    clock_mhz: float | None = None
    seed: int = 0
    progress: bool = True
    budget: float | None = None
    explore_dir: Path | None = None
    explore_grid: str | None = None
    target_mhz: float | None = None
    pnr_seeds: int = 1


@dataclass
class _EvalData:
    """Float evaluation sequences (normalised) with labels and where they came from."""

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray
    description: str
    full_test_split: bool

    def as_split(self) -> Any:
        """The sequences as a :class:`snnhw.data.base.SequenceDataset` (what the float models evaluate)."""
        from snnhw.data.base import SequenceDataset

        return SequenceDataset(x=self.x, y=self.y, lengths=self.lengths)


@dataclass
class BuildState:
    """What the steps hand to each other."""

    opts: BuildOptions
    out: Path
    name: str = "model"
    models: dict[str, Any] = field(default_factory=dict)
    """Frozen model per core kind (:mod:`snnhw.hw.registry`), the main core's first."""
    knobs: dict[str, Any] = field(default_factory=dict)
    """Resolved knobs per core kind."""
    checkpoints: dict[str, Any] = field(default_factory=dict)
    eval_data: _EvalData | None = None
    sequence_length: tuple[int, str] = (RANDOM_N, "")
    """The model's own sequence length N and where it comes from (:func:`_sequence_length`)."""
    budget: dict[str, Any] | None = None
    """The ``budget`` step's pick (None without ``--budget``)."""
    timing: dict[str, Any] = field(default_factory=dict)
    """The ``timing`` step's closure per core kind (:func:`~snnhw.flow.timing_closure.close_timing`;
    empty without ``--target-mhz``)."""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    rtl: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] | None = None
    saif: dict[str, Path] = field(default_factory=dict)
    resources: dict[str, Any] | None = None
    vivado: dict[str, Any] | None = None
    pnr: dict[str, Any] | None = None
    """The ``pnr`` step's result: per-core routed summaries and the board bitstream's."""
    yosys_runs: dict[str, Future[dict[str, Any]]] = field(default_factory=dict)
    """Yosys runs started in the background right after ``generate`` (see :func:`start_yosys`)."""

    @property
    def main(self) -> Any:
        """The main core's model (the spiking model): the board top's core and the report's reference."""
        return self.models.get(main_core().name)

    def schedule(self, kind: str) -> Any:
        """The pure schedule of core ``kind`` at the build's knobs."""
        return core_spec(kind).schedule(self.models[kind], self.knobs[kind])

    def component(self, kind: str) -> Any:
        """A fresh Amaranth component of core ``kind`` at the build's knobs."""
        return core_spec(kind).component(self.models[kind], self.knobs[kind])


# --------------------------------------------------------------------------------------- helpers

def _log(opts: BuildOptions, message: str) -> None:
    """One progress line on stderr (one write, so lines of parallel steps do not interleave)."""
    if opts.progress:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, then a rename, so an
    interrupted build leaves the previous file or none, never a truncated one."""
    text = json.dumps(data, indent=2, default=_json_default) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _run_step(state: BuildState, index: int, name: str, body: Callable[[BuildState], dict[str, Any]]) -> dict[str, Any]:
    """Run one step, time it, write ``<out>/<name>.json``; re-raise UserError / BuildFailed after recording."""
    opts = state.opts
    _log(opts, f"[{index}/{len(STEPS)}] {name} ...")
    start = time.perf_counter()
    record: dict[str, Any] = {"step": name}
    error: BaseException | None = None
    try:
        details = body(state)
        record.update(status="ok", reason="", **details)
    except StepSkipped as exc:
        record.update(status="skipped", reason=str(exc))
    except (UserError, BuildFailed) as exc:
        record.update(getattr(exc, "details", {}))
        record.update(status="failed", reason=str(exc))
        error = exc
    record["seconds"] = round(time.perf_counter() - start, 3)
    record.setdefault("artefacts", {})
    _write_json(state.out / f"{name}.json", record)
    state.records[name] = record
    suffix = f": {record['reason']}" if record["reason"] else ""
    _log(opts, f"[{index}/{len(STEPS)}] {name} {record['status']} ({record['seconds']:.1f} s){suffix}")
    if error is not None:
        raise error
    return record


def _rel(state: BuildState, path: Path | str) -> str:
    """``path`` relative to the build directory (artefact lists stay valid when it moves)."""
    try:
        return str(Path(path).resolve().relative_to(state.out.resolve()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------ step: load

def _hard_source(ckpt_path: Path, ckpt: Any, given: Path | None) -> Path:
    """The hard-LSTM checkpoint of the MAC baseline: ``given``, else the recorded source."""
    if given is not None:
        if not given.is_file():
            raise UserError(f"--baseline-model {given} does not exist")
        return given
    from snnhw.train.checkpoint import recorded_source, resolve_source

    recorded = recorded_source(ckpt.source)
    if not recorded:
        raise UserError(f"{ckpt_path} records no hard-LSTM source for the MAC baseline; pass --baseline-model")
    found = resolve_source(ckpt_path, recorded)
    if found is None:
        raise UserError(f"the hard-LSTM source {recorded} recorded in {ckpt_path} does not exist, nor beside it; "
                        "pass --baseline-model")
    return found


def _data_bundle(meta: dict[str, Any], normalisation: Any, data_dir: Path | None) -> Any | None:
    """The dataset of a model (``data_dir`` or the recorded path) when reachable, else None."""
    from snnhw.train.checkpoint import rebuild_data

    recorded = meta.get("source") if isinstance(meta, dict) else None
    path = data_dir if data_dir is not None else (Path(recorded) if recorded else None)
    if path is None or not Path(path).exists():
        if data_dir is not None:
            raise UserError(f"--data-dir {data_dir} does not exist")
        return None
    return rebuild_data(meta, path, normalisation=normalisation or None, progress=False)


def _eval_from_bundle(bundle: Any) -> _EvalData:
    test = bundle.test
    return _EvalData(np.asarray(test.x, np.float32), np.asarray(test.y, np.int64), np.asarray(test.lengths, np.int64),
                     f"{bundle.meta.get('dataset')} test split ({len(test)} sequences)", True)


def _eval_from_samples(samples: Samples) -> _EvalData:
    return _EvalData(samples.x, samples.y, samples.lengths, samples.description, False)


def step_load(state: BuildState) -> dict[str, Any]:
    """Quantize a checkpoint (or read frozen models); find the evaluation data."""
    from snnhw import __version__
    from snnhw.flow import default_model
    from snnhw.quant.frozen_io import is_frozen_file, load_frozen, save_frozen
    from snnhw.quant.quantizer import calibration_subset, quantize_baseline, quantize_spiking, saturation_report
    from snnhw.train.qat import quantizer_settings

    opts = state.opts
    paths = list(opts.models) or [default_model.default_checkpoint()]
    details: dict[str, Any] = {"inputs": [str(p) for p in paths]}
    # a damaged .snnhw file is reported as such, not as "not a checkpoint"
    frozen_inputs = [p for p in paths if is_frozen_file(p) or Path(p).suffix == ".snnhw"]
    calib_desc = None
    if frozen_inputs:
        if len(frozen_inputs) != len(paths):
            raise UserError("give either one checkpoint or frozen .snnhw model(s), not a mix")
        extra = [opts.baseline_model] if opts.baseline_model else []
        for path in paths + extra:
            model = load_frozen(path)
            try:
                kind = spec_for_model(model).name
            except TypeError as exc:
                raise UserError(f"{path}: {exc}") from None
            if kind in state.models:
                raise UserError(f"two {core_spec(kind).label} models given ({path})")
            state.models[kind] = model
        if state.main is None:
            raise UserError(f"the build needs a spiking model ({main_core().model_type.__name__}: a spiking "
                            "checkpoint or a frozen spiking .snnhw)")
        state.models = {spec.name: state.models[spec.name] for spec in core_specs() if spec.name in state.models}
        meta = state.main.meta or {}
        data_meta, norm = meta.get("data_meta") or meta.get("data"), meta.get("normalisation")
        bundle = _data_bundle(data_meta, norm, opts.data_dir) if isinstance(data_meta, dict) else None
        details["kind"] = "frozen"
    else:
        from snnhw.train.checkpoint import load_checkpoint

        if len(paths) != 1:
            raise UserError("give one spiking checkpoint (its hard-LSTM source makes the baseline)")
        ckpt_path = Path(paths[0])
        if not ckpt_path.is_file():
            raise UserError(f"model {ckpt_path} does not exist")
        ckpt = load_checkpoint(ckpt_path)
        if not ckpt.cfg.spiking:
            raise UserError(f"{ckpt_path} is a hard LSTM; the build needs the spiking checkpoint "
                            "(pass the hard one with --baseline-model)")
        hard_path = _hard_source(ckpt_path, ckpt, opts.baseline_model)
        hard = load_checkpoint(hard_path)
        if hard.cfg.spiking:
            raise UserError(f"the baseline source {hard_path} is a spiking model, not a hard LSTM")
        state.checkpoints = {"snn": ckpt, "hard": hard, "snn_path": ckpt_path, "hard_path": hard_path}
        bundle = _data_bundle(ckpt.data_meta, ckpt.normalisation, opts.data_dir)
        bundled = default_model.sibling_samples(ckpt_path)
        if bundled is not None:  # the bundled model: always calibrated on its bundled windows
            calib = default_model.load_samples(bundled, "calib")
            x_cal, len_cal, calib_desc = calib.x.astype(np.float64), calib.lengths, calib.description
        elif bundle is not None:
            x_cal, len_cal = calibration_subset(bundle.train, opts.calib_samples, opts.seed)
            calib_desc = (f"{len(x_cal)} sequences of the {ckpt.data_meta.get('dataset')} training split "
                          f"(seed {opts.seed})")
        else:
            raise UserError(f"quantizing {ckpt_path} needs its dataset for calibration, which is not at "
                            f"{ckpt.data_meta.get('source')}: pass --data-dir (or a frozen .snnhw model)")
        n_max = int(ckpt.data_meta.get("seq_len") or x_cal.shape[1])
        meta = {"data_meta": ckpt.data_meta, "class_names": ckpt.class_names, "normalisation": ckpt.normalisation,
                "float_metrics": ckpt.metrics, "checkpoint": str(ckpt_path.resolve()), "snnhw_version": __version__}
        grid, notes = quantizer_settings(ckpt.metrics, {"weight_bits": opts.weight_bits,
                                                        "input_bits": opts.input_bits})
        for line in notes:
            _log(opts, f"  {line}")
        common = dict(weight_bits=grid["weight_bits"], input_bits=grid["input_bits"], calib_x=x_cal,
                      calib_lengths=len_cal, n_max=n_max, input_percentile=grid["input_percentile"])
        hard_meta = {**meta, "float_metrics": hard.metrics, "checkpoint": str(hard_path.resolve())}
        for model in (quantize_spiking(ckpt.build_model(), seed=opts.seed, meta=meta, leak_terms=grid["leak_terms"],
                                       input_scale=grid["input_scale"], **common),
                      quantize_baseline(hard.build_model(), act_bits=opts.act_bits, meta=hard_meta, **common)):
            state.models[spec_for_model(model).name] = model
        details.update(kind="checkpoint", hard_source=str(hard_path), calibration=calib_desc, n_max=n_max,
                       quantizer={k: grid[k] for k in ("weight_bits", "input_bits", "leak_terms", "input_percentile")},
                       quantizer_notes=notes)
        sat = {}
        for kind, model in state.models.items():
            report = saturation_report(model, x_cal, len_cal)
            report.pop("classes")
            sat[kind] = report
        details["saturation_calibration"] = sat
        if bundle is None and bundled is not None:
            state.eval_data = _eval_from_samples(default_model.load_samples(bundled, "test"))
    if bundle is not None:
        state.eval_data = _eval_from_bundle(bundle)
    state.name = _model_name(paths[0])
    if opts.budget is None:  # knobs a model cannot take fail before the models are saved
        details["knobs"] = _resolve_knobs(state, opts.knobs)
    else:
        details["knobs"] = f"picked for --budget {opts.budget} (budget.json)"
    model_dir = state.out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    artefacts = {kind: _rel(state, save_frozen(model_dir / f"{kind}.snnhw", model))
                 for kind, model in state.models.items()}
    state.sequence_length = _sequence_length(state)
    details["sequence_length"] = {"N": state.sequence_length[0], "source": state.sequence_length[1]}
    details.update(name=state.name, artefacts=artefacts,
                   eval_data=state.eval_data.description if state.eval_data else None,
                   model=_model_summary(state))
    return details


def _resolve_knobs(state: BuildState, knobs: dict[str, Any]) -> dict[str, Any]:
    """Resolve every core's ``knobs`` (per core kind; missing kinds automatic) for its model (the
    automatic rule of :mod:`snnhw.hw.knobs`) into ``state.knobs``; returns per core kind the knobs
    and which were automatic. Bad knobs are a user error."""
    out: dict[str, Any] = {}
    for kind, model in state.models.items():
        spec = core_spec(kind)
        asked = knobs.get(kind) or spec.knobs_type()
        try:
            resolved = spec.knobs(model, asked)
            spec.schedule(model, resolved)  # knobs the model cannot take fail here, before any step
        except (ValueError, TypeError) as exc:
            raise option_error(exc, [f.name for f in fields(spec.knobs_type)], f"{spec.label}: ") from None
        state.knobs[kind] = resolved
        out[kind] = {**resolved.to_manifest(), "automatic": asked.automatic()}
    return out


def _sequence_length(state: BuildState) -> tuple[int, str]:
    """The model's own sequence length N (elements per sequence) and where it was found: the
    dataset's ``seq_len`` recorded in the model, else the quantizer's N_max, else the longest
    evaluation sequence, else the length of the build's random test sequences."""
    meta = state.main.meta or {}
    data_meta = meta.get("data_meta") or meta.get("data")
    if isinstance(data_meta, dict) and data_meta.get("seq_len"):
        return (int(data_meta["seq_len"]),
                f"the {data_meta.get('dataset', 'dataset')} sequence length recorded in the model")
    n_max = (meta.get("quantizer") or {}).get("n_max")
    if n_max:
        return int(n_max), "the quantizer's N_max recorded in the model"
    if state.eval_data is not None:
        return int(state.eval_data.lengths.max()), f"the longest sequence of {state.eval_data.description}"
    return RANDOM_N, "the length of the build's random test sequences (the model records none)"


def _model_name(path: Path) -> str:
    stem = Path(path).name
    for suffix in (".snnhw", ".pt"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem


def _model_summary(state: BuildState) -> dict[str, Any]:
    spk = state.main
    return {"name": state.name, "T": spk.T, "hidden_size": spk.hidden_size, "input_size": spk.input_size,
            "num_layers": len(spk.layers), "num_classes": spk.num_classes, "encoding": spk.encoding,
            "nonspiking_gate": spk.nonspiking_gate, "weight_bits": spk.weight_bits,
            "baseline_act_bits": next((m.act_bits for m in state.models.values() if hasattr(m, "act_bits")), None)}


# ---------------------------------------------------------------------------------- step: budget

def parse_budget(value: float | str) -> float:
    """A resource budget: a fraction F of the part, 0 < F ≤ 1, from a number or the command
    line's text; UserError (one line) otherwise."""
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        fraction = math.nan
    if not 0 < fraction <= 1:  # NaN fails too
        raise UserError(f"--budget takes a fraction of the part, 0 < F ≤ 1 (e.g. {DEFAULT_BUDGET}), not {value!r}")
    return fraction


def budget_part(board: Any) -> str:
    """The explorer's name (:data:`~snnhw.flow.explore.PARTS`) of the board's part, of which a
    budget is a fraction; UserError for a part the explorer does not cost."""
    from snnhw.flow.explore import PARTS

    part = next((name for name in PARTS if board.part.lower().startswith(name)), None)
    if part is None:
        raise UserError(f"--budget: the explorer costs Xilinx 7-series parts ({', '.join(PARTS)}); board "
                        f"{board.name} has {board.part}")
    return part


def _check_budget_options(opts: BuildOptions) -> None:
    """One-line errors, before any work, for options that contradict ``--budget`` or need it."""
    if opts.budget is None:
        for name, value in (("--explore-dir", opts.explore_dir), ("--explore-grid", opts.explore_grid)):
            if value is not None:
                raise UserError(f"{name} applies with --budget only")
        return
    from snnhw.flow.boards import find_board
    from snnhw.flow.explore import GRID_SIZES

    parse_budget(opts.budget)
    budget_part(find_board(opts.board))
    given = sorted({name for knobs in opts.knobs.values() for name, value in knobs.to_manifest().items()
                    if value != type(knobs)().to_manifest()[name]})
    if given:
        raise UserError("--budget picks the knobs; drop " + ", ".join("--" + n.replace("_", "-") for n in given))
    if opts.explore_dir is not None and opts.explore_grid is not None:
        raise UserError("--explore-grid is the grid the build explores, and with --explore-dir it explores nothing")
    if opts.explore_grid is not None and opts.explore_grid not in GRID_SIZES:
        raise UserError(f"--explore-grid takes {' or '.join(GRID_SIZES)}, not {opts.explore_grid!r}")


def _check_timing_options(opts: BuildOptions) -> None:
    """One-line errors, before any work, when ``--target-mhz`` or ``--pnr-seeds`` cannot be honoured."""
    if not (isinstance(opts.pnr_seeds, int) and opts.pnr_seeds >= 1):
        raise UserError(f"--pnr-seeds must be a whole number ≥ 1, not {opts.pnr_seeds!r}")
    if opts.target_mhz is None:
        return
    if not (isinstance(opts.target_mhz, (int, float)) and math.isfinite(opts.target_mhz) and opts.target_mhz > 0):
        raise UserError(f"--target-mhz must be a positive clock in MHz, not {opts.target_mhz!r}")
    _timing_device(opts)


def _explore_doc(state: BuildState, part: str) -> tuple[dict[str, Any], Path]:
    """The explorer's document for the build's models, and its directory: read from
    ``--explore-dir`` (explored for these very models), else explored here into
    ``<out>/explore`` on :func:`~snnhw.flow.explore.build_grid` (resumable: finished points and
    their Yosys results are reused)."""
    from snnhw.flow.explore import DEFAULT_SEQUENCES, ExploreOptions, build_grid, run_explore
    from snnhw.flow.yosys import yosys_missing
    from snnhw.hw.manifest import model_hash

    opts = state.opts
    if opts.explore_dir is not None:
        where = Path(opts.explore_dir)
        path = where / "explore.json"
        if not path.is_file():
            raise UserError(f"--explore-dir {where} holds no explore.json (an snnhw explore output directory)")
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON ({exc})") from None
        recorded = doc.get("models") or {}
        for kind, model in state.models.items():
            if recorded.get(kind) != model_hash(model):
                raise UserError(f"{path} was not explored for this build's {core_spec(kind).label} model "
                                f"({state.out / 'model' / f'{kind}.snnhw'})")
        _log(opts, f"    picking from {path} ({len(doc['points'])} points)")
        return doc, where
    missing = yosys_missing()
    if missing:
        raise UserError(f"--budget costs every explored point with Yosys: {missing} (or pick from --explore-dir)")
    where = state.out / "explore"
    size = opts.explore_grid or "small"
    grid = build_grid(state.models, size)
    inputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for kind, model in state.models.items():
        x, lengths, _, what = _test_inputs(state, model, DEFAULT_SEQUENCES)
        inputs[kind] = (x, lengths)
    _log(opts, f"    exploring the {size} grid ({sum(map(len, grid.values()))} points) into {where}")
    doc = run_explore(ExploreOptions(models=dict(state.models), out_dir=where, grid=grid, inputs=inputs,
                                     inputs_description=what, part=part, progress=opts.progress),
                      log=lambda line: _log(opts, f"    {line}"))
    return doc, where


def step_budget(state: BuildState) -> dict[str, Any]:
    """With ``--budget F``: each core's knobs = its fastest explored point costing at most F of
    the board's part (:func:`snnhw.flow.explore.fastest_within`; cost = max over LUT, FF, DSP,
    BRAM of used ÷ available, :func:`snnhw.flow.explore.cost_of`), and the pick's record."""
    from snnhw.flow.boards import find_board
    from snnhw.flow.explore import CAPACITY_LUTS_PER_BRAM36, PARTS, cost_of, fastest_within, knob_text

    opts = state.opts
    if opts.budget is None:
        raise StepSkipped("no --budget: the knobs are the given or automatic ones (load.json)")
    part = budget_part(find_board(opts.board))
    doc, where = _explore_doc(state, part)
    rates = doc["exchange_rates"]
    rate = rates.get("lut_per_dsp") or 0.0
    bram_rate = rates.get("lut_per_bram36") or CAPACITY_LUTS_PER_BRAM36
    points = []
    for p in doc["points"]:  # costed for the board's part (an explore may have used another)
        if p["core"] in state.models and p.get("resources"):
            fraction, binding, lut_eq = cost_of(p["resources"], PARTS[part], rate, bram_rate)
            points.append({**p, "cost_fraction": fraction, "cost_binding": binding, "lut_equivalents": lut_eq})
    picks = fastest_within(points, opts.budget, list(state.models), part)
    knobs = {kind: core_spec(kind).knobs_type.from_manifest(p["knobs"]) for kind, p in picks.items()}
    resolved = _resolve_knobs(state, knobs)
    record: dict[str, Any] = {
        "budget": opts.budget, "part": part, "part_resources": PARTS[part], "explore_dir": str(where),
        "explore_grid": None if opts.explore_dir else (opts.explore_grid or "small"),
        "inputs": doc["inputs"], "sequences": doc["sequences"], "exchange_rates": doc["exchange_rates"],
        "explored": {kind: sum(p["core"] == kind for p in points) for kind in state.models},
        "cores": {kind: {k: p[k] for k in BUDGET_FIELDS} for kind, p in picks.items()}}
    main = main_core().name
    others = [kind for kind in picks if kind != main]
    if others:
        ref, spk = picks[others[0]], picks[main]
        record["speedup"] = ref["cycles_mean"] / spk["cycles_mean"]
        record["energy_ratio"] = ref["energy_pj"] / spk["energy_pj"]
    for kind, p in picks.items():
        _log(opts, f"    {kind}: {knob_text(p['knobs'], p['mode'])} ({p['mode']}) costs "
                   f"{100 * p['cost_fraction']:.2f} % of {part}, {p['cycles_mean']:.0f} cycles per sequence")
    state.budget = record
    artefacts = {name: _rel(state, where / name) for name in ("explore.json", "explore.md")
                 if (where / name).is_file()}
    return {**record, "knobs": resolved, "artefacts": artefacts}


# ---------------------------------------------------------------------------------- step: timing

def _timing_device(opts: BuildOptions) -> Any:
    """The ECP5 device that ``--target-mhz`` closes timing on (UserError when the board, the
    options or the installed tools cannot: nothing would close it)."""
    from snnhw.flow.boards import find_board
    from snnhw.flow.ecp5 import board_device
    from snnhw.flow.tools import ecp5_missing

    board = find_board(opts.board)
    if board.flow != "ecp5":
        raise UserError(f"--target-mhz closes timing with the open ECP5 flow, and board {board.name} uses Vivado "
                        "(use --clock-mhz for its scripts, or an ECP5 board such as --board ulx3s-85f)")
    if not opts.pnr:
        raise UserError("--target-mhz needs place and route; it cannot be combined with --no-pnr")
    missing = ecp5_missing()
    if missing:
        raise UserError(f"--target-mhz needs the open ECP5 tools: {missing}")
    return board_device(board)


def step_timing(state: BuildState) -> dict[str, Any]:
    """With ``--target-mhz``: each core routed alone and its pipeline deepened where the critical
    path runs until it meets the target (:func:`~snnhw.flow.timing_closure.close_timing`); the
    knobs of the last round are the build's. Rounds in ``<out>/timing/<core>/r<k>/``."""
    from snnhw.flow.timing_closure import close_timing

    opts = state.opts
    if opts.target_mhz is None:
        raise StepSkipped("no --target-mhz: the pipeline stages are the given ones")
    device = _timing_device(opts)
    _log(opts, f"    closing timing at {opts.target_mhz:g} MHz on {device.part} "
               f"({', '.join(state.models)}; {PNR_WORKERS} routes at a time)")
    with ThreadPoolExecutor(max_workers=PNR_WORKERS) as pool:  # nextpnr runs on one core
        runs = {kind: pool.submit(close_timing, core_spec(kind), model, state.knobs[kind],
                                  state.out / "timing" / kind, device, target_mhz=opts.target_mhz,
                                  log=lambda line: _log(opts, line))
                for kind, model in state.models.items()}
        results = {kind: run.result() for kind, run in runs.items()}
    for kind, res in results.items():
        state.knobs[kind] = core_spec(kind).knobs_type.from_manifest(res["knobs"])
    state.timing = results
    return {"target_mhz": opts.target_mhz, "device": device.part,
            "met": {kind: r["met"] for kind, r in results.items()},
            "fmax_mhz": {kind: r["fmax_mhz"] for kind, r in results.items()},
            "knobs": {kind: state.knobs[kind].to_manifest() for kind in results},
            "cores": {kind: {k: r[k] for k in ("met", "fmax_mhz", "stopped", "rounds")} for kind, r in results.items()}}


# -------------------------------------------------------------------------------- step: generate

def step_generate(state: BuildState) -> dict[str, Any]:
    """Both cores' Verilog and manifests into ``rtl/``."""
    from snnhw.hw.generate import generate

    opts = state.opts
    try:
        summary = generate([(model, state.knobs[kind]) for kind, model in state.models.items()], state.out / "rtl",
                           progress=opts.progress)
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    state.rtl = summary["cores"]
    artefacts = {}
    for kind, core in summary["cores"].items():
        artefacts[f"{kind}_verilog"] = _rel(state, core["verilog"])
        artefacts[f"{kind}_manifest"] = _rel(state, core["manifest"])
    artefacts["generate_json"] = _rel(state, state.out / "rtl" / "generate.json")
    cores = {kind: {"top": c["top"], "verilog_bytes": c["verilog_bytes"], "seconds": c["seconds"],
                    "describe": json.loads(Path(c["manifest"]).read_text())["core"]}
             for kind, c in summary["cores"].items()}
    return {"artefacts": artefacts, "cores": cores}


# ---------------------------------------------------------------------------------- step: verify

def _test_inputs(state: BuildState, model: Any, count: int, max_length: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, list[int], str]:
    """``count`` quantized test sequences for ``model`` (evaluation data, else seeded random inputs).

    ``max_length`` > 0 keeps the first ``max_length`` elements of each sequence.
    """
    from snnhw.quant.quantizer import quantize_input
    from snnhw.quant.synthetic import random_inputs

    data = state.eval_data
    if data is not None:
        count = min(count, len(data.y))
        lengths = data.lengths[:count].astype(np.int64)
        what = f"first {count} of {data.description}"
        if max_length > 0 and int(lengths.max()) > max_length:
            lengths = np.minimum(lengths, max_length)
            what += f", first {max_length} elements of each"
        n_max = int(lengths.max())
        x_q = quantize_input(model, data.x[:count, :n_max])
        x_q = x_q * (np.arange(n_max)[None, :, None] < lengths[:, None, None])
        return x_q.astype(np.int64), lengths, list(range(count)), what
    length = min(RANDOM_N, int((model.meta or {}).get("quantizer", {}).get("n_max") or RANDOM_N))
    x, lengths = random_inputs(model, state.opts.seed, count, length, vary_lengths=True)
    return x, lengths, list(range(count)), f"{count} random sequences (seed {state.opts.seed}, N ≤ {length})"


def step_verify(state: BuildState) -> dict[str, Any]:
    """Short bit-exact cocotb verification of both cores (in parallel); a mismatch fails the build."""
    from snnhw.sim.runner import default_simulator, simulator_missing
    from snnhw.sim.stimulus import default_modes
    from snnhw.sim.verify import verify_core

    opts = state.opts
    if not opts.verify:
        raise StepSkipped("--no-verify")
    sim = opts.simulator or default_simulator()
    missing = simulator_missing(sim)
    if missing:
        raise StepSkipped(f"{sim}: {missing}")
    def run_one(kind: str) -> dict[str, Any]:
        model = state.models[kind]
        x, lengths, ids, what = _test_inputs(state, model, opts.verify_sequences, opts.verify_length)
        _log(opts, f"    verifying the {kind} core on {what} ({sim})")
        report = verify_core(model, state.schedule(kind), Path(state.rtl[kind]["verilog"]), x, lengths,
                             state.out / "verify" / kind, knobs=state.knobs[kind], sim=sim, waves=opts.waves,
                             modes=default_modes(opts.seed, stalls=opts.verify_stalls), sample_ids=ids)
        return {**asdict(report), "inputs": what}

    kinds = [kind for kind in state.models if kind in state.rtl]
    with ThreadPoolExecutor(max_workers=len(kinds)) as pool:  # one simulator process per core
        futures = {kind: pool.submit(run_one, kind) for kind in kinds}
        cores: dict[str, Any] = {kind: future.result() for kind, future in futures.items()}
    artefacts: dict[str, str] = {}
    for kind, entry in cores.items():
        artefacts[f"{kind}_work_dir"] = _rel(state, state.out / "verify" / kind)
        saif = (entry.get("activity") or {}).get("saif")
        if saif:
            state.saif[kind] = Path(saif)
            artefacts[f"{kind}_saif"] = _rel(state, saif)
    passed = all(c["passed"] for c in cores.values())
    state.verify = {"passed": passed, "simulator": sim,
                    "sequences": min(c["sequences"] for c in cores.values()),
                    "cores": {k: {"passed": c["passed"], "message": c["message"], "cycles": c["cycles"],
                                  "inputs": c["inputs"], "test_s": c["test_s"], "build_s": c["build_s"]}
                              for k, c in cores.items()}}
    details = {"passed": passed, "simulator": sim, "artefacts": artefacts, "cores": cores}
    if not passed:
        bad = [f"{k}: {c['message']}" for k, c in cores.items() if not c["passed"]]
        raise BuildFailed("RTL does not match the golden model: " + "; ".join(bad), details)
    return details


# ----------------------------------------------------------------------------------- step: board

def selfcheck_words(model: Any, schedule: Any, inputs: np.ndarray, lengths: np.ndarray, *,
                    head_in_hw: bool = False, input_mode: str | None = None) -> tuple[list[int], list[int], int]:
    """ROM contents of the self-checking top for a batch of quantized sequences.

    Returns ``(input_words, expected_words, cycles)``: the packed ``i`` payloads of every element
    (``data | last << Wi``), the golden model's output words packed as ``o`` payloads
    (``(data mod 2^Wo) | last << Wo``, ``last`` on each sequence's final word;
    ``docs/hw-interface.md``) and the sum of the core's published cycles of the sequences
    (``schedule``: the core's :mod:`snnhw.hw.schedule` object).
    """
    from snnhw.sim.stimulus import build_stimulus

    stim = build_stimulus(model, schedule, inputs, lengths, input_mode=input_mode, head_in_hw=head_in_hw)
    width = stim.out_data_bits
    mask = (1 << width) - 1
    in_words: list[int] = []
    expected: list[int] = []
    for seq in stim.sequences:
        in_words += seq.inputs
        last = len(seq.expected) - 1
        expected += [(value & mask) | (int(k == last) << width) for k, value in enumerate(seq.expected)]
    return in_words, expected, sum(int(s.cycles or 0) for s in stim.sequences)


def step_board(state: BuildState) -> dict[str, Any]:
    """The self-checking board top as the board's Vivado build plan, and the OOC scripts."""
    from amaranth.hdl import Value

    from snnhw.flow.boards import find_board
    from snnhw.flow.selfcheck import BoardSelfCheck, SelfCheckTop
    from snnhw.flow.vivado import write_ooc_scripts

    opts = state.opts
    board = find_board(opts.board)
    clock_hz = board.clock_hz()
    main = main_core().name
    x, lengths, _, what = _test_inputs(state, state.main, opts.selfcheck_sequences)
    in_words, expected, cycles = selfcheck_words(state.main, state.schedule(main), x, lengths)
    core = state.component(main)
    check = SelfCheckTop(core, in_words, expected)
    board_dir = state.out / "board"
    board_dir.mkdir(parents=True, exist_ok=True)
    plan = board.platform_class()().build(BoardSelfCheck(check, board, clock_hz), name=BOARD_TOP, do_build=False)
    plan.extract(str(board_dir))
    roms = {"sequences": int(len(lengths)), "inputs": what, "input_words": in_words, "expected_words": expected,
            "input_payload_bits": len(Value.cast(core.i.payload)),
            "output_payload_bits": len(Value.cast(core.o.payload))}
    _write_json(board_dir / "selfcheck_roms.json", roms)
    artefacts = {"board_dir": _rel(state, board_dir), "roms": _rel(state, board_dir / "selfcheck_roms.json")}
    for name in sorted(p.name for p in board_dir.iterdir()):
        artefacts[f"board/{name}"] = _rel(state, board_dir / name)
    record = {"board": board.to_dict(), "board_clock_mhz": clock_hz / 1e6,
              "selfcheck": {"sequences": int(len(lengths)), "inputs": what, "input_words": len(in_words),
                            "expected_words": len(expected), "core_cycles": cycles,
                            "seconds_at_board_clock": cycles / clock_hz,
                            "leds": board.to_dict()["leds"]}}
    if board.flow == "ecp5":
        return {**record, "how_to_build": f"cd {board_dir} && sh build_{BOARD_TOP}_open.sh  (the pnr step runs it)",
                "artefacts": artefacts}
    clock_mhz = opts.clock_mhz or clock_hz / 1e6
    period_ns = 1000.0 / clock_mhz
    viv_dir = state.out / "vivado"
    viv_dir.mkdir(parents=True, exist_ok=True)
    scripts: dict[str, Any] = {}
    for kind, info in state.rtl.items():
        verilog = viv_dir / Path(info["verilog"]).name
        shutil.copyfile(info["verilog"], verilog)
        saif = None
        if kind in state.saif:
            saif = viv_dir / f"{kind}.saif"
            shutil.copyfile(state.saif[kind], saif)
        paths = write_ooc_scripts(viv_dir, name=kind, top=info["top"], verilog_files=[verilog], part=board.part,
                                  period_ns=period_ns, saif_file=Path(saif.name) if saif else None)
        scripts[kind] = {"tcl": _rel(state, paths["tcl"]), "xdc": _rel(state, paths["xdc"]),
                         "saif": _rel(state, saif) if saif else None}
        artefacts[f"{kind}_ooc_tcl"] = scripts[kind]["tcl"]
    return {
        **record, "ooc_clock_mhz": clock_mhz,
        "ooc_scripts": scripts,
        "how_to_build": f"cd {board_dir} && sh build_{BOARD_TOP}.sh  (needs Vivado)",
        "artefacts": artefacts,
    }


# ----------------------------------------------------------------------------------- step: yosys

def start_yosys(state: BuildState, pool: ThreadPoolExecutor) -> None:
    """Start ``synth_xilinx`` of every generated core on ``pool`` (one Yosys process per core).

    Called as soon as the Verilog exists, so synthesis overlaps verification and the board
    step; :func:`step_yosys` collects the results. Does nothing when Yosys is off or missing
    (the step then records why it skipped).
    """
    from snnhw.flow.yosys import synth_xc7, yosys_missing

    if not state.opts.yosys or yosys_missing():
        return
    _log(state.opts, f"    synth_xilinx -family xc7 started in the background: {', '.join(state.rtl)} core(s)")
    state.yosys_runs = {kind: pool.submit(synth_xc7, Path(info["verilog"]), info["top"], state.out / "yosys" / kind)
                        for kind, info in state.rtl.items()}


def step_yosys(state: BuildState) -> dict[str, Any]:
    """Collect Yosys ``synth_xilinx -family xc7`` of both cores (cells and logic depth).

    The runs were started by :func:`start_yosys` after ``generate``; this step's ``seconds`` is
    the time still waited for them here, each core's ``synth_seconds`` the Yosys run itself.
    """
    from snnhw.flow.yosys import yosys_missing

    opts = state.opts
    if not opts.yosys:
        raise StepSkipped("--no-yosys")
    missing = yosys_missing()
    if missing:
        raise StepSkipped(missing)
    results: dict[str, Any] = {kind: future.result() for kind, future in state.yosys_runs.items()}
    artefacts = {f"{kind}_summary": _rel(state, res["summary_json"]) for kind, res in results.items()}
    for kind, res in results.items():
        _log(opts, f"    {kind}: " + ("reused the result for identical RTL" if res["reused"]
                                      else f"synthesised in {res['synth_seconds']:.1f} s"))
    state.resources = {"source": "yosys", "cores": {k: v["resources"] for k, v in results.items()}}
    return {"results": results, "artefacts": artefacts, "overlapped_with": ["verify", "board"]}


# ------------------------------------------------------------------------------------- step: pnr

def step_pnr(state: BuildState) -> dict[str, Any]:
    """ECP5 boards: each core placed and routed alone (its own Fmax), then the board top to a
    ``.bit`` file, with the open flow (:mod:`snnhw.flow.ecp5`).

    The step's record ``<out>/pnr.json`` holds the summaries (:func:`~snnhw.flow.ecp5.parse_nextpnr_report`)
    of each core (``cores``; with ``pnr_seeds`` > 1 the fastest seed's, :func:`~snnhw.flow.ecp5.best_of_seeds`)
    and of the board top (``board_top``, with its bitstream); each run's files stay in
    ``<out>/pnr/<core>/`` (seed s > 1: ``<out>/pnr/<core>-seed<s>/``) and ``<out>/board/``.
    """
    from snnhw.flow.boards import find_board
    from snnhw.flow.ecp5 import DEFAULT_SEED, best_of_seeds, board_device, build_bitstream, route_core, seed_dirs
    from snnhw.flow.tools import ecp5_missing

    opts = state.opts
    board = find_board(opts.board)
    if board.flow != "ecp5":
        raise StepSkipped(f"board {board.name} uses the Vivado flow (--board ulx3s-85f routes with open tools)")
    if not opts.pnr:
        raise StepSkipped("--no-pnr")
    missing = ecp5_missing()
    if missing:
        raise StepSkipped(missing)
    device = board_device(board)
    target = opts.target_mhz or opts.clock_mhz or PNR_TARGET_MHZ
    pnr_dir, board_dir = state.out / "pnr", state.out / "board"
    seeds = list(range(DEFAULT_SEED, DEFAULT_SEED + opts.pnr_seeds))
    # the first seed's route is where a closed core's last round was routed: the same inputs, reused
    core_dirs = {kind: seed_dirs(Path(state.timing[kind]["pnr_dir"]) if kind in state.timing else pnr_dir / kind,
                                 seeds) for kind in state.rtl}
    sweep = f", seeds {seeds[0]}–{seeds[-1]}, the fastest kept" if len(seeds) > 1 else ""
    _log(opts, f"    nextpnr-ecp5 {device.part}: the board top {BOARD_TOP} to a bitstream, and "
               f"{', '.join(state.rtl)} alone at {target:g} MHz{sweep} ({PNR_WORKERS} runs at a time)")
    with ThreadPoolExecutor(max_workers=PNR_WORKERS) as pool:  # nextpnr runs on one core
        top_run = pool.submit(build_bitstream, board_dir, BOARD_TOP, device, freq_mhz=board.clock_hz() / 1e6)
        core_runs = {kind: {s: pool.submit(route_core, Path(info["verilog"]), info["top"], core_dirs[kind][s], device,
                                           freq_mhz=target, seed=s) for s in seeds}
                     for kind, info in state.rtl.items()}
        cores = {kind: best_of_seeds({s: run.result() for s, run in runs.items()}) for kind, runs in core_runs.items()}
        top = top_run.result()
    for name, res in (*cores.items(), (BOARD_TOP, top)):
        spread = (f" (seed {res['seed']}; seeds: " + ", ".join(f"{f:.1f}" for f in res["seeds"].values()) + ")"
                  if len(res.get("seeds", {})) > 1 else "")
        _log(opts, f"      {name}: Fmax {res['fmax_min_mhz']:.1f} MHz{spread}"
                   + (" (reused)" if res["reused"] else f" (place and route {res['pnr_seconds']:.0f} s)"))
    state.pnr = {"device": device.part, "target_mhz": target, "cores": cores, "board_top": top}
    artefacts = {"bitstream": _rel(state, board_dir / top["bitstream"]),
                 **{f"{kind}_pnr": _rel(state, core_dirs[kind][cores[kind]["seed"]] / "pnr.json") for kind in cores}}
    return {**state.pnr, "fmax_mhz": {kind: r["fmax_min_mhz"] for kind, r in cores.items()}, "artefacts": artefacts}


# ---------------------------------------------------------------------------------- step: vivado

def step_vivado(state: BuildState) -> dict[str, Any]:
    """Out-of-context Vivado runs of both cores and the board bitstream (with ``--vivado`` only)."""
    from snnhw.flow.vivado import parse_vivado_results, run_vivado, vivado_available

    if not state.opts.vivado:
        raise StepSkipped("not requested (--vivado runs Vivado when it is on PATH)")
    if vivado_available() is None:
        raise StepSkipped("vivado is not on PATH")
    viv_dir = state.out / "vivado"
    results: dict[str, Any] = {}
    artefacts: dict[str, str] = {}
    for kind in state.rtl:
        script = viv_dir / f"{kind}_ooc.tcl"
        _log(state.opts, f"    vivado out-of-context: {kind} core")
        run_vivado(script, log=viv_dir / f"{kind}_ooc.log")
        results[kind] = parse_vivado_results(viv_dir / f"{kind}_vivado.json", viv_dir / f"{kind}_power.rpt")
        artefacts[f"{kind}_summary"] = _rel(state, viv_dir / f"{kind}_vivado.json")
    board_dir = state.out / "board"
    _log(state.opts, "    vivado: board bitstream")
    with open(board_dir / "vivado_build.log", "w") as log:
        proc = subprocess.run(["sh", f"build_{BOARD_TOP}.sh"], cwd=board_dir, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise UserError(f"the board build failed (exit {proc.returncode}); see {board_dir / 'vivado_build.log'}")
    bitstreams = sorted(board_dir.glob("*.bit"))
    artefacts.update({f"bitstream{k}": _rel(state, p) for k, p in enumerate(bitstreams)})
    state.vivado = results
    state.resources = {"source": "vivado", "cores": {k: {key: v.get(key) for key in
                                                         ("LUT", "FF", "CARRY4", "DSP48E1", "RAMB18E1", "RAMB36E1")}
                                                     for k, v in results.items()}}
    return {"results": results, "artefacts": artefacts}


# ---------------------------------------------------------------------------------- step: report

def _clocks(state: BuildState) -> tuple[dict[str, float | None], str]:
    """(clock in MHz per core kind, where it comes from) of the latency figures: Vivado's achieved
    clock of each core when Vivado ran, else each core's routed Fmax when the open ECP5 flow
    routed it, else the target clock for every core (an estimate)."""
    if state.vivado:
        return ({kind: v["achieved_mhz"] for kind, v in state.vivado.items()},
                "Vivado achieved clock of each core (out of context)")
    if state.pnr:
        return ({kind: r["fmax_min_mhz"] for kind, r in state.pnr["cores"].items()},
                f"routed Fmax of each core alone on {state.pnr['device']} (nextpnr-ecp5, open flow)")
    board = state.records.get("board", {})
    target = board.get("ooc_clock_mhz") or state.opts.clock_mhz
    return ({kind: target for kind in state.models},
            "estimate: the target clock, not a timing result (no Vivado or place-and-route run)")


def _pnr_brief(summary: dict[str, Any]) -> dict[str, Any]:
    """The report's part of a ``pnr.json`` summary: Fmax, whether met, used resources, the
    critical path's delay and stages."""
    path = summary["critical_paths"][0] if summary.get("critical_paths") else {}
    return {"fmax_mhz": summary["fmax_min_mhz"], "met": summary["met"], "seed": summary.get("seed"),
            "seeds_fmax_mhz": summary.get("seeds"),
            "used": {name: u["used"] for name, u in summary["utilisation"].items()},
            "critical_path_ns": path.get("delay_ns"), "critical_path_stages": path.get("logic_stages"),
            "critical_path": f"{path.get('start')} → {path.get('end')}" if path else None}


def _latency(state: BuildState) -> dict[str, Any]:
    """Cycles per sequence of every core and of the main core's T·N serial schedule, at the
    model's own N first (``rows[0]`` = "this model") and then at the :data:`REFERENCE_N` lengths.

    The serial figure is the main (wavefront) core's own schedule with the T·N cells of a
    sequence processed one after another (the earlier spiking LSTMs' order) instead of in
    T+N−1 diagonal steps (``WavefrontSchedule.serial_cycles``). Event-driven cores are tabulated
    by their dense twin (cycles there depend on the spikes).
    """
    schedules = {kind: state.schedule(kind).dense() for kind in state.models}
    main = schedules[main_core().name]
    model_n, source = state.sequence_length
    ns = [model_n] + [n for n in REFERENCE_N if n != model_n]
    clocks, clock_source = _clocks(state)
    return {"N": ns, "rows": ["this model"] + [f"reference: {REFERENCE_N[n]}" for n in ns[1:]],
            "model_N_source": source,
            "cores": {kind: [int(s.cycles(n)) for n in ns] for kind, s in schedules.items()},
            "serial": [int(main.serial_cycles(n)) for n in ns],
            "formulas": {kind: s.formula() for kind, s in schedules.items()},
            "schedules": {kind: s.params() for kind, s in schedules.items()},
            "clock_mhz": clocks.get(main_core().name), "clocks_mhz": clocks, "clock_source": clock_source}


def _accuracy_and_activity(state: BuildState) -> tuple[dict[str, Any] | None, dict[str, Any] | None,
                                                        dict[str, Any] | None]:
    """(accuracy, energy, sparsity) from golden runs with counters on the evaluation data.

    Accuracy is recorded per core kind as ``int_<kind>``; with the float spiking checkpoint at
    hand, ``integer_vs_float`` compares the main core's integer model with it sequence by
    sequence (:mod:`snnhw.train.paired`: difference, 95 % interval, McNemar's p). The energy
    compares the main core's counters with the MAC baseline's
    (:func:`snnhw.quant.energy.energy_report`).
    """
    from snnhw.quant.energy import energy_report
    from snnhw.quant.quantizer import quantize_input
    from snnhw.train.paired import compare_decisions

    data = state.eval_data
    if data is None:
        return None, None, None
    accuracy: dict[str, Any] = {"split": data.description, "n": int(len(data.y))}
    counters: dict[str, Any] = {}
    classes: dict[str, np.ndarray] = {}
    for kind, model in state.models.items():
        res = core_spec(kind).golden(model, quantize_input(model, data.x), data.lengths, counters=True,
                                     progress=state.opts.progress)
        accuracy[f"int_{kind}"] = float((res.classes == data.y).mean())
        counters[kind] = res.counters
        classes[kind] = res.classes
    float_run = _float_spiking_run(state, data)
    accuracy.update(_float_accuracy(state, data, float_run))
    main = main_core().name
    if float_run is not None:
        accuracy["integer_vs_float"] = compare_decisions(classes[main], float_run["classes"], data.y).to_dict()
    others = [c for k, c in counters.items() if k != main]
    energy = energy_report(counters[main], others[0] if others else None,
                           schedule=state.schedule(main).energy_schedule)
    sparsity = {name: float(v) for name, v in counters[main]["layers"][-1]["sparsity"].items()}
    return accuracy, energy, sparsity


def _float_spiking_run(state: BuildState, data: _EvalData) -> dict[str, Any] | None:
    """The float spiking checkpoint evaluated on the evaluation data, with each sequence's class
    (:func:`snnhw.train.trainer.evaluate`); None for a build from frozen models alone."""
    if not state.checkpoints:
        return None
    from snnhw.train.trainer import evaluate

    return evaluate(state.checkpoints["snn"].build_model(), data.as_split(), progress=state.opts.progress,
                    keep_classes=True)


def _float_accuracy(state: BuildState, data: _EvalData, float_run: dict[str, Any] | None) -> dict[str, Any]:
    """Float hard / spiking accuracies on the same data: recorded (full test split) or measured
    (the spiking one is ``float_run``'s)."""
    ckpts = state.checkpoints
    if not ckpts:
        metrics = (state.main.meta or {}).get("float_metrics") or {}
        base_metrics = next(((m.meta or {}).get("float_metrics") or {} for k, m in state.models.items()
                             if k != main_core().name), {})
        if data.full_test_split:
            return {"float_spiking": metrics.get("test_accuracy"), "float_hard": base_metrics.get("test_accuracy"),
                    "float_source": "recorded in the frozen models (test split)"}
        return {"float_source": "not measured (frozen models without their checkpoints)"}
    recorded = all("test_accuracy" in ckpts[role].metrics for role in ("snn", "hard"))
    if data.full_test_split and recorded:
        return {"float_spiking": ckpts["snn"].metrics["test_accuracy"],
                "float_hard": ckpts["hard"].metrics["test_accuracy"],
                "float_source": "recorded in the checkpoints (same test split)"}
    from snnhw.train.trainer import evaluate

    assert float_run is not None  # the build has checkpoints
    return {"float_spiking": float_run["accuracy"],
            "float_hard": evaluate(ckpts["hard"].build_model(), data.as_split())["accuracy"],
            "float_source": f"measured here on {data.description}"}


def step_report(state: BuildState) -> dict[str, Any]:
    """``report.json``, ``report.md`` and the plots."""
    from snnhw.flow.report import write_report

    report: dict[str, Any] = {"model": _model_summary(state),
                              "cores": [{"name": kind, "label": core_spec(kind).label} for kind in state.models]}
    accuracy, energy, sparsity = _accuracy_and_activity(state)
    if accuracy:
        report["accuracy"] = accuracy
    if energy:
        report["energy"] = energy
    if sparsity:
        report["sparsity"] = sparsity
    if state.resources:
        report["resources"] = state.resources
    if state.rtl:
        report["latency"] = _latency(state)
    if state.budget:
        clocks, clock_source = _clocks(state)
        report["budget"] = {**state.budget, "clock_mhz": clocks.get(main_core().name), "clocks_mhz": clocks,
                            "clock_source": clock_source,
                            "cores": {kind: {**c, "latency_us": c["cycles_mean"] / clocks[kind]
                                             if clocks.get(kind) else None}
                                      for kind, c in state.budget["cores"].items()}}
    if state.pnr:
        report["pnr"] = {"device": state.pnr["device"], "target_mhz": state.pnr["target_mhz"],
                         "cores": {kind: _pnr_brief(r) for kind, r in state.pnr["cores"].items()},
                         "board_top": {**_pnr_brief(state.pnr["board_top"]),
                                       "bitstream": f"board/{state.pnr['board_top']['bitstream']}"}}
    if state.timing:
        report["timing"] = {"target_mhz": state.opts.target_mhz,
                            "cores": {kind: {"met": r["met"], "fmax_mhz": r["fmax_mhz"], "stopped": r["stopped"],
                                             "rounds": [{k: rd[k] for k in ("knobs", "fmax_mhz", "met", "blocks",
                                                                              "deepened")} for rd in r["rounds"]]}
                                      for kind, r in state.timing.items()}}
    if state.verify:
        report["verify"] = state.verify
    if "board" in state.records and state.records["board"]["status"] == "ok":
        board = state.records["board"]
        report["board"] = {"name": board["board"]["name"], "part": board["board"]["part"],
                           "clock_mhz": board["board_clock_mhz"], "selfcheck": board["selfcheck"],
                           "how_to_build": board["how_to_build"]}
    report["steps"] = {name: {"status": r["status"], "reason": r["reason"], "seconds": r["seconds"]}
                       for name, r in state.records.items()}
    files = write_report(report, state.out)
    return {"artefacts": {k: _rel(state, v) for k, v in files.items()}}


# ------------------------------------------------------------------------------------- the build

@dataclass
class BuildResult:
    """Outcome of :func:`run_build`: the directory, each step's record, and the exit status."""

    out_dir: Path
    records: dict[str, dict[str, Any]]
    exit_code: int
    wall_s: float


def run_build(opts: BuildOptions) -> BuildResult:
    """Run every step of ``snnhw build``; returns the records (a failed step stops the build).

    A verification mismatch (or a failing tool that was asked for) still writes that step's
    JSON and the report of what was done, and gives exit status 1. User mistakes raise
    :class:`~snnhw.errors.UserError`.
    """
    from snnhw.flow.boards import find_board

    find_board(opts.board)  # an unknown board fails before any work
    for name, value in (("--verify-sequences", opts.verify_sequences), ("--selfcheck-sequences",
                                                                        opts.selfcheck_sequences)):
        if value < 1:
            raise UserError(f"{name} must be ≥ 1, got {value}")
    if opts.verify_length < 0:
        raise UserError(f"--verify-length must be ≥ 0, got {opts.verify_length}")
    if opts.clock_mhz is not None and not (opts.clock_mhz > 0 and math.isfinite(opts.clock_mhz)):
        raise UserError(f"--clock-mhz must be a positive number, got {opts.clock_mhz}")
    _check_budget_options(opts)
    _check_timing_options(opts)
    start = time.perf_counter()
    from snnhw.flow import default_model

    first = opts.models[0] if opts.models else default_model.default_checkpoint()
    out = Path(opts.out_dir) if opts.out_dir else Path("build") / _model_name(first)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output directory {out}: {exc.strerror or exc}") from None
    with build_lock(out):
        return _run_locked(opts, out, start)


LOCK_FILE = ".snnhw-build.lock"
"""The lock file in a build directory: held (``flock``) while a build writes there."""


@contextmanager
def build_lock(out: Path) -> Iterator[None]:
    """Hold the build directory's lock; a second build into the same directory is refused with a
    one-line error while the first runs. The operating system drops the lock when the holder
    exits, so an interrupted build leaves nothing to clean up."""
    import fcntl

    try:
        handle = open(out / LOCK_FILE, "a+")
    except OSError as exc:
        raise UserError(f"cannot write to the build directory {out}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise UserError(f"another snnhw build (pid {holder}) is writing to {out}; wait for it to finish or "
                            "build into another directory (-o)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _run_locked(opts: BuildOptions, out: Path, start: float) -> BuildResult:
    """The steps of :func:`run_build` with the directory's lock held."""
    for stale in (*STEPS, "report", "build"):
        (out / f"{stale}.json").unlink(missing_ok=True)
    state = BuildState(opts=opts, out=out)
    bodies = {"load": step_load, "budget": step_budget, "timing": step_timing, "generate": step_generate,
              "verify": step_verify,
              "board": step_board, "yosys": step_yosys, "pnr": step_pnr, "vivado": step_vivado,
              "reports": step_report}
    exit_code = 0
    with ThreadPoolExecutor(max_workers=2) as yosys_pool:  # a failed build still waits for started runs
        for index, name in enumerate(STEPS, start=1):
            try:
                _run_step(state, index, name, bodies[name])
            except BuildFailed:
                exit_code = 1
                break
            except UserError:
                if name in ("load", "budget", "timing"):
                    raise
                exit_code = 1
                break
            if name == "generate":
                start_yosys(state, yosys_pool)
    if exit_code and "reports" not in state.records:
        try:
            _run_step(state, len(STEPS), "reports", step_report)
        except (UserError, BuildFailed):
            pass
    wall = time.perf_counter() - start
    _write_json(out / "build.json", {"out_dir": str(out), "exit_code": exit_code, "wall_s": round(wall, 2),
                                     "options": {k: (str(v) if isinstance(v, Path) else v)
                                                 for k, v in asdict(opts).items()},
                                     "steps": {n: r["status"] for n, r in state.records.items()}})
    return BuildResult(out, state.records, exit_code, wall)


def summary_table(result: BuildResult) -> str:
    """The final per-step table printed by ``snnhw build`` (Markdown)."""
    lines = ["| step | status | seconds | note |", "|---|---|---|---|"]
    for name in STEPS:
        record = result.records.get(name)
        if record is None:
            lines.append(f"| {name} | not run | — | |")
        else:
            lines.append(f"| {name} | {record['status']} | {record['seconds']:.1f} | {record['reason']} |")
    from snnhw.flow.explore import knob_text

    report = result.out_dir / "report.json"
    if report.is_file():
        rep = json.loads(report.read_text())
        res, lat, energy = rep.get("resources"), rep.get("latency"), rep.get("energy")
        acc = rep.get("accuracy") or {}
        kinds = [c["name"] for c in rep.get("cores", [])]
        lines.append("")
        if acc:
            lines.append(f"accuracy ({acc.get('split')}), integer: "
                         + ", ".join(f"{kind} {_pct(acc.get('int_' + kind))}" for kind in kinds))
        if res:
            cells = res.get("cores", {})
            lines.append(f"resources ({res.get('source')}): " + "; ".join(
                f"{kind} LUT {cells[kind].get('LUT')} FF {cells[kind].get('FF')} DSP {cells[kind].get('DSP48E1')}"
                for kind in kinds if kind in cells))
        if lat:
            lines.append(f"cycles at the model's N={lat['N'][0]}: "
                         + ", ".join(f"{kind} {lat['cores'][kind][0]}" for kind in kinds if kind in lat["cores"])
                         + f", T·N serial {lat['serial'][0]}")
        budget = rep.get("budget")
        if budget:
            lines.append(f"budget {100 * budget['budget']:g} % of {budget['part']}: " + "; ".join(
                f"{kind} {knob_text(c['knobs'], c['mode'])} ({c['mode']}) {100 * c['cost_fraction']:.2f} %, "
                f"{c['cycles_mean']:.0f} cycles" for kind, c in budget["cores"].items())
                + ("" if "speedup" not in budget else
                   f"; spiking ÷ baseline: {budget['speedup']:.2f}× speed-up, {budget['energy_ratio']:.2f}× "
                   "less energy"))
        if energy and energy.get("ratio"):
            lines.append(f"energy per inference: spiking {energy['spiking_pj']:.0f} pJ, baseline "
                         f"{energy['baseline_pj']:.0f} pJ (ratio {energy['ratio']:.2f}×)")
    lines.append(f"\nbuild directory: {result.out_dir}  ({result.wall_s:.1f} s)")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"

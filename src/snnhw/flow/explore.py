"""``snnhw explore``: sweep every registered core's knobs; latency, energy and cost per point.

For a frozen spiking model and its MAC baseline, every point of the knob grid of every core
kind (:mod:`snnhw.hw.registry`) is

1. sized: the core's pure schedule gives its cycles on each of K real (or seeded random) test
   sequences, from the golden model's spike trace when the schedule depends on the spikes, and
   its utilisation (useful work ÷ (units × cycles));
2. costed: its Verilog is generated, keyed by SHA-256, and synthesised with Yosys
   ``synth_xilinx -family xc7`` (``snnhw.flow.yosys.synth_xc7``; identical RTL is synthesised
   once, across runs: the explorer is resumable), in parallel. The cost is reported two ways:
   (a) the *fraction* of the target part it occupies, ``max(LUT/LUTs, FF/FFs, DSP/DSPs,
   BRAM36/BRAMs)``, and (b) *LUT-equivalents* ``LUT + r_DSP·DSP48E1 + r_BRAM·BRAM36`` with
   both rates measured on this design: ``r_DSP`` from the point with the most DSP48E1
   synthesised again with ``-nodsp`` (extra LUTs per DSP removed), ``r_BRAM`` from the point
   with the most BRAM36 synthesised again with ``-nobram`` (extra LUTs per BRAM36 removed; the
   capacity rate, a BRAM36's 36 Kib as LUT6 RAM64X1S = 576, when nothing can be measured, and
   beside the measured figure in every point's ``lut_equivalents_capacity``);
3. given the energy per inference of its schedule (:func:`snnhw.quant.energy.energy_report`:
   compute only, and with weight/state memory reads), from the golden model's counters.

Writes ``explore.json`` (every point, the exchange rates, the part, the models' hashes),
``points/<key>.json`` per point as it completes (the key covers the core, the model, the knobs
and the test sequences: a rerun skips finished points), the Pareto plots ``latency_vs_cost.png``
and ``energy_vs_cost.png`` (one colour per core kind and mode), and ``explore.md`` with the
iso-resource table: for each baseline point, the fastest and the most energy-efficient
spiking point that costs no more (both cost measures).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from snnhw.errors import UserError

PARTS: dict[str, dict[str, int]] = {
    "xc7k325t": {"LUT": 203_800, "FF": 407_600, "DSP48E1": 840, "BRAM36": 445},
    "xc7k160t": {"LUT": 101_400, "FF": 202_800, "DSP48E1": 600, "BRAM36": 325},
    "xc7a100t": {"LUT": 63_400, "FF": 126_800, "DSP48E1": 240, "BRAM36": 135},
}
"""Resources of the target parts (Xilinx 7-series data sheet DS180, Table 2 and 3)."""

CAPACITY_LUTS_PER_BRAM36 = 576
"""The capacity rate of r_BRAM (LUT per BRAM36): a BRAM36's 36 Kib held as distributed RAM in
RAM64X1S LUT6s (36,864 / 64). The explorer measures r_BRAM on the design
(:func:`bram_exchange_rate`); this is its fallback when nothing can be measured, and every point's
``lut_equivalents_capacity`` is costed at it for comparison."""

CAPACITY_SOURCE = "36 Kib as RAM64X1S distributed RAM (36,864 / 64)"
"""How :data:`CAPACITY_LUTS_PER_BRAM36` is derived (``exchange_rates`` in ``explore.json``)."""

MODES: dict[str, dict[str, Any]] = {
    "dense": {"event_driven": False},
    "event-engine": {"event_driven": True, "event_mode": "engine"},
    "event-shared": {"event_driven": True, "event_mode": "shared"},
    "event-queue": {"event_driven": True, "event_mode": "queue"},
    "event-queue-shared": {"event_driven": True, "event_mode": "queue-shared"},
}
"""Spiking-core schedules a grid point can have (``snnhw explore --modes``)."""

GRID_LANES: tuple[int, ...] = (1, 2, 4, 8)
"""Lanes of the full grid (``snnhw explore``'s default ``--lanes``)."""

GRID_MODES: tuple[str, ...] = ("dense", "event-engine", "event-queue", "event-queue-shared")
"""Spiking schedules of the full grid (``snnhw explore``'s default ``--modes``)."""

SMALL_GRID_MODES: tuple[str, ...] = ("dense", "event-queue")
"""Spiking schedules of the small grid: the cheapest and the fastest per adder."""

GRID_SIZES: tuple[str, ...] = ("small", "full", "queue")
"""The grids :func:`build_grid` makes (``snnhw build --explore-grid``)."""

QUEUE_GRID_LANES: tuple[int, ...] = (4, 8, 16)
"""Spiking lanes of the ``queue`` grid (fanin 4, one engine, the shared spike queue)."""

QUEUE_GRID_BASELINE_LANES: tuple[int, ...] = (1, 2, 4, 8)
"""Baseline lanes of the ``queue`` grid (fanin 4)."""

DEFAULT_SEQUENCES = 64
"""Test sequences the cycles and energy are measured on (``snnhw explore --sequences``)."""


@dataclass
class ExploreOptions:
    """Settings of :func:`run_explore` (``snnhw explore --help``).

    Attributes:
        models: the frozen model per core kind (at least the main core's).
        out_dir: output directory.
        grid: per core kind, its points: ``{kind: [{knob: value, ...}, ...]}`` (knobs not named
            are automatic; a point the model cannot take is skipped with the reason logged).
        inputs: per core kind, its test sequences quantized for its model: (int [K, N, D], lengths
            int [K]) — the same sequences for every core; ``inputs_description`` says which.
        part: target part (:data:`PARTS`).
        synth: run Yosys (else cycles and energy only, no cost).
        jobs: Yosys processes in parallel.
        progress: a progress bar over the points.
    """

    models: dict[str, Any]
    out_dir: Path
    grid: dict[str, list[dict[str, Any]]]
    inputs: dict[str, tuple[np.ndarray, np.ndarray]]
    inputs_description: str = ""
    part: str = "xc7k325t"
    synth: bool = True
    jobs: int = 2
    progress: bool = True


@dataclass
class Point:
    """One explored configuration and its figures (``explore.json`` → ``points``).

    ``lut_equivalents`` (LUT) is costed at the measured exchange rates (``explore.json`` →
    ``exchange_rates``); ``lut_equivalents_capacity`` (LUT) the same with r_BRAM at the capacity
    rate :data:`CAPACITY_LUTS_PER_BRAM36`.
    """

    core: str
    mode: str
    knobs: dict[str, Any]
    key: str
    units: int
    unit_name: str
    cycles_mean: float
    cycles_max: int
    utilisation_mean: float
    energy_pj: float | None = None
    energy_with_memory_pj: float | None = None
    rtl_sha256: str | None = None
    resources: dict[str, Any] | None = None
    cost_fraction: float | None = None
    cost_binding: str | None = None
    lut_equivalents: float | None = None
    lut_equivalents_capacity: float | None = None
    synth_seconds: float | None = None


def product_grid(values: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Points from value lists: the product, e.g. ``{"lanes": [2, 4], "fanin": [4]}`` → 2 points."""
    keys = sorted(values)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(values[k] for k in keys))]


def knob_grid(models: dict[str, Any], lanes: Sequence[int], fanin: Sequence[int] | None = None,
              engines: Sequence[int] | None = None, proj_fanin: Sequence[int] = (1,),
              modes: Sequence[str] = GRID_MODES, bank_readers: Sequence[int] = (1,),
              proj_narrowing: Sequence[int] = (1,)) -> dict[str, list[dict[str, Any]]]:
    """The grid of every core kind in ``models``: for the main (spiking) core lanes × fanin
    (default: each point's lanes) × engines (default 1 and T) × proj_fanin × modes (:data:`MODES`),
    the spike-queue modes also × ``bank_readers`` (the values that divide the fanin; the other
    modes have one reader), and × ``proj_narrowing`` S (a direct-input projection of
    ``proj_lanes`` = L/S lanes, for the S that divide L; S = 1: ``proj_lanes`` left at L); for the
    other kinds lanes × fanin. Points a model cannot take are skipped by :func:`run_explore`."""
    from snnhw.hw.knobs import EventMode
    from snnhw.hw.registry import main_core

    main = main_core().name
    engines = engines or sorted({1, models[main].T})
    widths = [(lane, f) for lane in lanes for f in (fanin or [lane])]

    def readers(mode: str, f: int) -> list[int]:
        queued = MODES[mode].get("event_driven") and EventMode(MODES[mode]["event_mode"]).queued
        return [r for r in bank_readers if f % r == 0] if queued else [1]

    grid: dict[str, list[dict[str, Any]]] = {
        main: [{"lanes": lane, "fanin": f, "engines": e, "proj_fanin": pf, **MODES[mode],
                **({"bank_readers": r} if r > 1 else {}), **({"proj_lanes": lane // n} if n > 1 else {})}
               for lane, f in widths for e in engines for pf in proj_fanin for mode in modes
               for r in readers(mode, f) for n in proj_narrowing if lane % n == 0]}
    for kind in models:
        if kind != main:
            grid[kind] = [{"lanes": lane, "fanin": f} for lane, f in widths]
    return grid


def build_grid(models: dict[str, Any], size: str) -> dict[str, list[dict[str, Any]]]:
    """The grid ``snnhw build --budget`` explores (:data:`GRID_SIZES`).

    ``full``: ``snnhw explore``'s defaults (lanes = fanin in :data:`GRID_LANES`, engines 1 and T,
    :data:`GRID_MODES`). ``small``: the lanes of the full grid within a factor 2 of the automatic
    width (:func:`snnhw.hw.knobs.auto_width` of the spiking model's largest H), engines 1 and T,
    :data:`SMALL_GRID_MODES` (for H = 32, T = 4: 12 spiking and 3 baseline points). ``queue``:
    the spike-queue core where it beats the baseline at equal cost (``docs/explore.md``): lanes
    :data:`QUEUE_GRID_LANES`, fanin 4, one engine, the shared queue, 1, 2 or 4 readers per bank,
    the direct-input projection as wide as the lanes or half as wide; the baseline at lanes
    :data:`QUEUE_GRID_BASELINE_LANES`, fanin 4 (18 spiking and 4 baseline points).
    """
    from snnhw.hw.knobs import auto_width
    from snnhw.hw.registry import main_core

    if size == "full":
        return knob_grid(models, GRID_LANES)
    if size == "queue":
        main = main_core().name
        grid = knob_grid({main: models[main]}, QUEUE_GRID_LANES, fanin=[4], engines=[1],
                         modes=["event-queue-shared"], bank_readers=(1, 2, 4), proj_narrowing=(1, 2))
        grid.update({kind: [{"lanes": lane, "fanin": 4} for lane in QUEUE_GRID_BASELINE_LANES]
                     for kind in models if kind != main})
        return grid
    if size != "small":
        raise UserError(f"unknown grid {size!r} (known: {', '.join(GRID_SIZES)})")
    width = auto_width(max(layer.hidden_size for layer in models[main_core().name].layers))
    return knob_grid(models, [lane for lane in GRID_LANES if width / 2 <= lane <= 2 * width],
                     modes=SMALL_GRID_MODES)


def _check_points(kind: str, points: list[dict[str, Any]]) -> None:
    """A one-line error for a knob the core kind does not have."""
    from dataclasses import fields

    from snnhw.hw.registry import core_spec

    names = {f.name for f in fields(core_spec(kind).knobs_type)}
    unknown = sorted({k for p in points for k in p} - names)
    if unknown:
        raise UserError(f"the {core_spec(kind).label} has no knob {', '.join(unknown)} "
                        f"(knobs: {', '.join(sorted(names))})")


def _mode(knobs: Any) -> str:
    """A point's family in the plots: dense / event (engine) / event (shared) / mac."""
    if not hasattr(knobs, "event_driven"):
        return "mac"
    return f"event-{knobs.event_mode}" if knobs.event_driven else "dense"


def bram36_of(resources: dict[str, Any]) -> float:
    """BRAM36 used by a synthesis result: RAMB36E1 + RAMB18E1 / 2."""
    return resources.get("RAMB36E1", 0) + resources.get("RAMB18E1", 0) / 2


def luts_of(resources: dict[str, Any]) -> int:
    """LUTs used by a synthesis result: logic LUTs plus the LUT sites of distributed RAM and shift
    registers (``LUTRAM``, :data:`snnhw.flow.yosys.LUTRAM_SITES`), as a part's LUT count holds both."""
    return resources.get("LUT", 0) + resources.get("LUTRAM", 0)


def cost_of(resources: dict[str, Any], part: dict[str, int], lut_per_dsp: float,
            lut_per_bram36: float = CAPACITY_LUTS_PER_BRAM36) -> tuple[float, str, float]:
    """(fraction of the part, the binding resource, LUT-equivalents) of a synthesis result.

    LUT-equivalents = LUT (:func:`luts_of`) + ``lut_per_dsp`` · DSP48E1 + ``lut_per_bram36`` ·
    BRAM36 (:func:`bram36_of`); the rates are in LUT per DSP48E1 and LUT per BRAM36 (the
    explorer's measured ones: :func:`dsp_exchange_rate`, :func:`bram_exchange_rate`;
    ``lut_per_bram36`` defaults to the capacity rate :data:`CAPACITY_LUTS_PER_BRAM36`).
    """
    bram36 = bram36_of(resources)
    used = {"LUT": luts_of(resources), "FF": resources.get("FF", 0),
            "DSP48E1": resources.get("DSP48E1", 0), "BRAM36": bram36}
    fractions = {k: used[k] / part[k] for k in used}
    binding = max(fractions, key=fractions.get)
    lut_eq = used["LUT"] + lut_per_dsp * used["DSP48E1"] + lut_per_bram36 * bram36
    return fractions[binding], binding, lut_eq


def _traces(models: dict[str, Any], inputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Golden runs per core kind: counters (energy) and, for spiking models, the spike trace."""
    from snnhw.hw.registry import core_spec

    out = {}
    for kind, model in models.items():
        spec = core_spec(kind)
        trace = hasattr(model, "T")
        x, lengths = inputs[kind]
        out[kind] = spec.golden(model, x, lengths, counters=True, **({"trace": True} if trace else {}))
    return out


def _sequence_stats(schedule: Any, model: Any, result: Any, inputs: np.ndarray, lengths: np.ndarray
                    ) -> tuple[float, int, float, dict[int, int] | None]:
    """(mean cycles, max cycles, mean utilisation, weight reads) of ``schedule`` over the batch;
    the weight reads (spiking cores: per layer, 1-based, the synapse weights read over the whole
    batch, :meth:`~snnhw.hw.schedule.WavefrontSchedule.weight_reads`) are None for the MAC
    baseline, whose counters already count one read per MAC."""
    from snnhw.quant import golden

    cycles, utils = [], []
    reads: dict[int, int] | None = {} if getattr(result, "trace", None) is not None else None
    spiking = getattr(result, "trace", None) is not None
    u_all = golden.rate_encode(model, inputs) if spiking and schedule.input_mode != "direct" else None
    for b, n in enumerate(int(v) for v in lengths):
        if spiking:
            u = None if u_all is None else u_all[b, :n]
            h = [layer["h"][b, :n] for layer in result.trace]
            c = schedule.sequence_cycles(n, u, h)
            utils.append(schedule.utilisation(u, h, c))
            for index, count in enumerate(schedule.weight_reads(n, u, h)):
                reads[index + 1] = reads.get(index + 1, 0) + count
        else:
            c = schedule.cycles(n)
            utils.append(schedule.utilisation(n, c))
        cycles.append(c)
    return float(np.mean(cycles)), int(max(cycles)), float(np.mean(utils)), reads


def _inputs_hash(x: np.ndarray, lengths: np.ndarray) -> str:
    """SHA-256 (hex) of a batch of quantized test sequences and their lengths."""
    digest = hashlib.sha256()
    for array in (x, lengths):
        array = np.ascontiguousarray(array, np.int64)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


POINT_MODEL_VERSION = 3
"""Version of the per-point cycle, energy and resource model in the cache key (2: weight reads
from the hardware schedule; 3: distributed RAM counted in LUT sites); a change of the model
invalidates cached points, not the synthesis cache (whose cells are regrouped on reuse)."""


def _point_key(kind: str, model_sha: str, inputs_sha: str, knobs: Any) -> str:
    """The cache key of a point: its cycles and energy depend on the model, the test sequences
    and the knobs (the synthesis result is cached separately, by the RTL's hash)."""
    text = json.dumps({"core": kind, "model": model_sha, "inputs": inputs_sha, "knobs": knobs.to_manifest(),
                       "point_model": POINT_MODEL_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_explore(opts: ExploreOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Explore every grid point; returns (and writes) the ``explore.json`` document."""
    from tqdm import tqdm

    from snnhw.hw.generate import convert
    from snnhw.hw.manifest import model_hash
    from snnhw.hw.registry import core_spec, main_core
    from snnhw.quant.energy import schedule_energy

    if opts.part not in PARTS:
        raise UserError(f"unknown part {opts.part!r} (known: {', '.join(PARTS)})")
    if main_core().name not in opts.models:
        raise UserError(f"explore needs the {main_core().label}'s model")
    if set(opts.inputs) != set(opts.models):
        raise UserError("explore needs the test sequences quantized for every model")
    if opts.synth:
        from snnhw.flow.yosys import yosys_missing

        missing = yosys_missing()
        if missing:
            raise UserError(f"explore synthesises every point with Yosys: {missing} (or --no-synth)")
    out = Path(opts.out_dir)
    for sub in ("points", "rtl", "synth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    sequences = len(next(iter(opts.inputs.values()))[1])
    log(f"golden runs on {sequences} sequences ({opts.inputs_description})")
    results = _traces(opts.models, opts.inputs)
    main = main_core().name

    jobs: list[tuple[str, Any]] = []
    for kind, model in opts.models.items():
        spec = core_spec(kind)
        points_of_kind = opts.grid.get(kind, [{}])
        _check_points(kind, points_of_kind)
        for values in points_of_kind:
            try:
                knobs = spec.knobs(model, spec.knobs_type(**values))
                spec.schedule(model, knobs)
            except (ValueError, TypeError) as exc:
                log(f"    skipped {kind} {values}: {exc}")
                continue
            jobs.append((kind, knobs))
    if not jobs:
        raise UserError("the grid has no point that the models can take")

    model_shas = {kind: model_hash(model) for kind, model in opts.models.items()}
    inputs_shas = {kind: _inputs_hash(*opts.inputs[kind]) for kind in opts.models}

    def point_of(kind: str, knobs: Any) -> Point:
        spec, model = core_spec(kind), opts.models[kind]
        key = _point_key(kind, model_shas[kind], inputs_shas[kind], knobs)
        cached = out / "points" / f"{key}.json"
        text = convert(spec.component(model, knobs), spec.top) if opts.synth else ""
        sha = hashlib.sha256(text.encode()).hexdigest()
        if cached.is_file():
            doc = json.loads(cached.read_text())
            # the resources of a cached point hold while the generator still writes the same RTL
            if not opts.synth or (doc.get("resources") is not None and doc.get("rtl_sha256") == sha):
                return Point(**doc)
        schedule = spec.schedule(model, knobs)
        mode = _mode(knobs)
        mean, worst, util, reads = _sequence_stats(schedule, model, results[kind], *opts.inputs[kind])
        energy = schedule_energy(results[kind].counters, schedule.energy_schedule, weight_reads=reads)
        point = Point(core=kind, mode=mode, knobs=knobs.to_manifest(), key=key, units=schedule.units,
                      unit_name=schedule.unit_name, cycles_mean=mean, cycles_max=worst, utilisation_mean=util,
                      energy_pj=energy["compute_with_head_pj"], energy_with_memory_pj=energy["total_pj"])
        if opts.synth:
            rtl = out / "rtl" / f"{sha[:16]}.v"
            if not rtl.is_file():
                rtl.write_text(text)
            res = synth_point(rtl, spec.top, out / "synth" / sha[:16])
            point.rtl_sha256, point.resources = sha, res["resources"]
            point.synth_seconds = res["synth_seconds"]
        cached.write_text(json.dumps(asdict(point), indent=1) + "\n")
        return point

    points: list[Point] = []
    bar = tqdm(total=len(jobs), desc="explore", unit="point", disable=not opts.progress)
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        for point in pool.map(lambda job: point_of(*job), jobs):
            points.append(point)
            bar.update(1)
    bar.close()

    rates: dict[str, Any] = {"lut_per_dsp": None, "lut_per_bram36": None,
                             "lut_per_bram36_capacity": CAPACITY_LUTS_PER_BRAM36,
                             "lut_per_bram36_capacity_source": CAPACITY_SOURCE}
    if opts.synth:
        rates.update(dsp_exchange_rate(points, out))
        rates.update(bram_exchange_rate(points, out))
        part = PARTS[opts.part]
        for p in points:
            p.cost_fraction, p.cost_binding, p.lut_equivalents = cost_of(
                p.resources or {}, part, rates["lut_per_dsp"] or 0.0, rates["lut_per_bram36"])
            p.lut_equivalents_capacity = cost_of(p.resources or {}, part, rates["lut_per_dsp"] or 0.0,
                                                 CAPACITY_LUTS_PER_BRAM36)[2]
    doc = {"format": "snnhw-explore", "version": 1, "part": opts.part, "part_resources": PARTS[opts.part],
           "models": model_shas, "inputs": opts.inputs_description, "sequences": int(sequences),
           "exchange_rates": rates, "grid": opts.grid, "points": [asdict(p) for p in points],
           "iso_resource": iso_resource_table([asdict(p) for p in points], main) if opts.synth else [],
           "wall_s": round(time.perf_counter() - start, 2)}
    (out / "explore.json").write_text(json.dumps(doc, indent=1) + "\n")
    plots = explore_plots(doc, out) if opts.synth else {}
    (out / "explore.md").write_text(explore_markdown(doc, plots))
    return doc


def synth_point(rtl: Path, top: str, work: Path, *, nodsp: bool = False, nobram: bool = False) -> dict[str, Any]:
    """Yosys ``synth_xilinx -family xc7`` of one point (reused when the RTL is unchanged), with
    ``-nodsp`` / ``-nobram`` when asked."""
    from snnhw.flow.yosys import synth_xc7

    return synth_xc7(rtl, top, work, nodsp=nodsp, nobram=nobram)


def _resynthesised_largest(points: list[Point], out: Path, amount: Callable[[dict[str, Any]], float],
                           flag: str) -> tuple[Point, dict[str, Any]] | None:
    """The synthesised point with the most of a resource (``amount`` of its resources) and its
    synthesis again with ``flag`` ("nodsp" or "nobram"; work directory ``synth/<sha>-<flag>``),
    or None when no point uses the resource."""
    from snnhw.hw.registry import core_spec

    using = [p for p in points if p.resources and amount(p.resources) > 0]
    if not using:
        return None
    ref = max(using, key=lambda p: amount(p.resources))
    rtl = out / "rtl" / f"{ref.rtl_sha256[:16]}.v"
    again = synth_point(rtl, core_spec(ref.core).top, out / "synth" / f"{ref.rtl_sha256[:16]}-{flag}", **{flag: True})
    return ref, again


def dsp_exchange_rate(points: list[Point], out: Path) -> dict[str, Any]:
    """r_DSP: the point with the most DSP48E1 synthesised again with ``-nodsp``; extra LUTs per
    DSP removed (None when no point uses a DSP)."""
    found = _resynthesised_largest(points, out, lambda r: r.get("DSP48E1", 0), "nodsp")
    if found is None:
        return {"lut_per_dsp": None, "lut_per_dsp_source": "no point uses a DSP48E1"}
    ref, nodsp = found
    extra = nodsp["resources"]["LUT"] - ref.resources["LUT"]
    dsps = ref.resources["DSP48E1"] - nodsp["resources"].get("DSP48E1", 0)
    rate = extra / dsps if dsps else None
    return {"lut_per_dsp": rate,
            "lut_per_dsp_source": (f"{ref.core} point {ref.knobs}: {ref.resources['LUT']} LUT + "
                                   f"{ref.resources['DSP48E1']} DSP48E1, with -nodsp {nodsp['resources']['LUT']} LUT + "
                                   f"{nodsp['resources'].get('DSP48E1', 0)} DSP48E1")}


def bram_exchange_rate(points: list[Point], out: Path) -> dict[str, Any]:
    """r_BRAM (LUT per BRAM36): the point with the most BRAM36 (RAMB36E1 + RAMB18E1 / 2)
    synthesised again with ``-nobram`` (work directory ``synth/<sha>-nobram``); the extra LUTs
    (:func:`luts_of`: logic LUTs plus distributed-RAM sites, the figure :func:`cost_of` costs)
    per BRAM36 removed.

    Returns ``lut_per_bram36`` (LUT per BRAM36), ``lut_per_bram36_measured`` (bool) and
    ``lut_per_bram36_source`` (which point, its LUT + BRAM36 and with ``-nobram``). When no point
    uses block RAM, or ``-nobram`` removes none, or the LUTs do not grow (no figure to measure),
    the rate is the capacity rate :data:`CAPACITY_LUTS_PER_BRAM36` and the source says why.

    Yosys (0.70) cannot put a ROM in distributed RAM, so ``-nobram`` builds the weight ROMs as
    multiplexer logic, one tree per read port: on the H = 128 cores 961–3,473 LUT per BRAM36
    (``docs/explore.md``, "Readers per bank"), an upper bound beside the capacity rate that a
    tool with distributed ROM reaches.
    """
    def fallback(why: str) -> dict[str, Any]:
        return {"lut_per_bram36": float(CAPACITY_LUTS_PER_BRAM36), "lut_per_bram36_measured": False,
                "lut_per_bram36_source": f"{why}; the capacity rate: {CAPACITY_SOURCE}"}

    found = _resynthesised_largest(points, out, bram36_of, "nobram")
    if found is None:
        return fallback("no point uses block RAM")
    ref, nobram = found
    lut, lut_nobram = luts_of(ref.resources), luts_of(nobram["resources"])
    bram, bram_nobram = bram36_of(ref.resources), bram36_of(nobram["resources"])
    removed, extra = bram - bram_nobram, lut_nobram - lut
    source = (f"{ref.core} point {ref.knobs}: {lut} LUT + {bram:g} BRAM36, with -nobram {lut_nobram} LUT + "
              f"{bram_nobram:g} BRAM36; LUT = logic LUTs + LUTRAM sites")
    if removed <= 0:
        return fallback(f"-nobram removed no BRAM36 ({source})")
    if extra <= 0:
        return fallback(f"-nobram added no LUT ({source})")
    return {"lut_per_bram36": extra / removed, "lut_per_bram36_measured": True, "lut_per_bram36_source": source}


def iso_resource_table(points: list[dict[str, Any]], main: str) -> list[dict[str, Any]]:
    """For each point of another core kind: the fastest and the most energy-efficient main-core
    point costing no more, by each cost measure (fraction of the part; LUT-equivalents)."""
    rows = []
    mains = [p for p in points if p["core"] == main and p["cost_fraction"] is not None]
    for ref in (p for p in points if p["core"] != main and p["cost_fraction"] is not None):
        row: dict[str, Any] = {"reference": {k: ref[k] for k in ("core", "knobs", "cycles_mean", "energy_pj",
                                                                  "cost_fraction", "lut_equivalents")}}
        for measure in ("cost_fraction", "lut_equivalents"):
            cheaper = [p for p in mains if p[measure] <= ref[measure]]
            fastest = min(cheaper, key=lambda p: p["cycles_mean"], default=None)
            frugal = min(cheaper, key=lambda p: p["energy_pj"], default=None)
            row[measure] = {
                "fastest": None if fastest is None else {
                    "knobs": fastest["knobs"], "mode": fastest["mode"], "cycles_mean": fastest["cycles_mean"],
                    "latency_ratio": ref["cycles_mean"] / fastest["cycles_mean"], measure: fastest[measure]},
                "most_efficient": None if frugal is None else {
                    "knobs": frugal["knobs"], "mode": frugal["mode"], "energy_pj": frugal["energy_pj"],
                    "energy_ratio": ref["energy_pj"] / frugal["energy_pj"], measure: frugal[measure]},
            }
        rows.append(row)
    return rows


def fastest_within(points: list[dict[str, Any]], budget: float, kinds: list[str], part: str
                   ) -> dict[str, dict[str, Any]]:
    """Per core kind, the fastest point whose cost (``cost_fraction``, fraction of ``part``) is at
    most ``budget``: fewest mean cycles per sequence (on the explorer's sequences); a tie goes to
    the lower energy per inference (pJ, compute), then to the lower cost.

    ``points``: ``explore.json`` points (dicts). A kind without a costed point, or whose every
    point costs more than ``budget``, is a :class:`~snnhw.errors.UserError` (one line, naming
    the cheapest point found).
    """
    from snnhw.hw.registry import core_spec

    picks: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        label = core_spec(kind).label
        costed = [p for p in points if p["core"] == kind and p.get("cost_fraction") is not None]
        if not costed:
            raise UserError(f"the explored data hold no costed {label} point (explored without synthesis?)")
        fits = [p for p in costed if p["cost_fraction"] <= budget]
        if not fits:
            cheapest = min(costed, key=lambda p: p["cost_fraction"])
            raise UserError(f"no explored {label} point fits a budget of {100 * budget:.2f} % of {part}: the "
                            f"cheapest costs {100 * cheapest['cost_fraction']:.2f} % "
                            f"({knob_text(cheapest['knobs'], cheapest['mode'])}, {cheapest['mode']}; "
                            f"{cheapest['cost_binding']} binds)")
        picks[kind] = min(fits, key=lambda p: (p["cycles_mean"], p["energy_pj"], p["cost_fraction"]))
    return picks


def explore_plots(doc: dict[str, Any], out: Path) -> dict[str, str]:
    """Pareto plots: latency vs cost and energy vs cost, one colour per core kind and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from snnhw.hw.registry import core_spec

    plots = {}
    families = sorted({(p["core"], p["mode"]) for p in doc["points"]})
    for name, field_, label in (("latency_vs_cost", "cycles_mean", "cycles per sequence (mean)"),
                                ("energy_vs_cost", "energy_pj", "energy per inference (pJ, compute)")):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, (core, mode) in enumerate(families):
            pts = [p for p in doc["points"]
                   if (p["core"], p["mode"]) == (core, mode) and p["cost_fraction"] is not None]
            ax.scatter([100 * p["cost_fraction"] for p in pts], [p[field_] for p in pts], color=f"C{i}",
                       label=f"{core_spec(core).label} ({mode})")
            front = pareto([(p["cost_fraction"], p[field_]) for p in pts])
            if front:
                ax.plot([100 * c for c, _ in front], [v for _, v in front], color=f"C{i}", linewidth=1)
        ax.set_xlabel(f"cost: % of {doc['part']} (max over LUT, FF, DSP, BRAM)")
        ax.set_ylabel(label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=8)
        ax.set_title(name.replace("_", " "))
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        plots[name] = f"{name}.png"
    return plots


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points not dominated in (cost, value), both lower-is-better, sorted by cost."""
    front: list[tuple[float, float]] = []
    for cost, value in sorted(points):
        if not front or value < front[-1][1]:
            front.append((cost, value))
    return front


def explore_markdown(doc: dict[str, Any], plots: dict[str, str]) -> str:
    """``explore.md``: the points, the exchange rates and the iso-resource table."""
    lines = [f"# Design-space exploration ({doc['part']})", "",
             f"{len(doc['points'])} points; cycles on {doc['sequences']} sequences ({doc['inputs']}); "
             f"{doc['wall_s']:.0f} s.", ""]
    rates = doc["exchange_rates"]
    capacity = rates.get("lut_per_bram36_capacity", CAPACITY_LUTS_PER_BRAM36)
    if rates.get("lut_per_bram36") is not None:
        dsp = (f"{rates['lut_per_dsp']:.1f}" if rates.get("lut_per_dsp") is not None else "0")
        lines += [f"LUT-equivalents: LUT + {dsp}·DSP48E1 ({rates.get('lut_per_dsp_source', 'not measured')}) + "
                  f"{rates['lut_per_bram36']:.1f}·BRAM36 ({rates['lut_per_bram36_source']}). "
                  f"LUT-eq @ {capacity:g}: the same with the BRAM36 at the capacity rate, {capacity:g} LUT per BRAM36 "
                  f"({rates.get('lut_per_bram36_capacity_source', CAPACITY_SOURCE)}).", ""]
    lines += ["| core | mode | knobs | units | cycles (mean) | utilisation | energy (pJ) | LUT | FF | DSP | "
              f"BRAM36 | % part | LUT-eq | LUT-eq @ {capacity:g} |", "|" + "---|" * 14]
    for p in doc["points"]:
        res = p["resources"] or {}
        knobs = knob_text(p["knobs"], p["mode"])
        bram = res.get("RAMB36E1", 0) + res.get("RAMB18E1", 0) / 2 if res else None
        lines.append(f"| {p['core']} | {p['mode']} | {knobs} | {p['units']} {p['unit_name']} | "
                     f"{p['cycles_mean']:.0f} | {p['utilisation_mean']:.3f} | {_num(p['energy_pj'])} | "
                     f"{_num(res.get('LUT'))} | "
                     f"{_num(res.get('FF'))} | {_num(res.get('DSP48E1'))} | {_num(bram)} | "
                     f"{_num(None if p['cost_fraction'] is None else 100 * p['cost_fraction'], 2)} | "
                     f"{_num(p['lut_equivalents'])} | {_num(p.get('lut_equivalents_capacity'))} |")
    if doc["iso_resource"]:
        lines += ["", "## Iso-resource comparison", "",
                  "For each reference point, the fastest and the most energy-efficient main-core point that costs "
                  "no more (by the fraction of the part, and by LUT-equivalents).", "",
                  "| reference | measure | fastest (knobs, mode) | latency ratio | most efficient | energy ratio |",
                  "|---|---|---|---|---|---|"]
        for row in doc["iso_resource"]:
            ref = row["reference"]
            for measure in ("cost_fraction", "lut_equivalents"):
                f, e = row[measure]["fastest"], row[measure]["most_efficient"]
                fast = ("— | —" if f is None
                        else f"{knob_text(f['knobs'], f['mode'])} ({f['mode']}) | {f['latency_ratio']:.2f}×")
                frugal = ("— | —" if e is None
                          else f"{knob_text(e['knobs'], e['mode'])} ({e['mode']}) | {e['energy_ratio']:.2f}×")
                lines.append(f"| {ref['core']} {knob_text(ref['knobs'], 'mac')} | {measure} | {fast} | {frugal} |")
    for name, path in plots.items():
        lines += ["", f"![{name}]({path})"]
    return "\n".join(lines) + "\n"


def knob_text(knobs: dict[str, Any], mode: str) -> str:
    """``lanes=4, fanin=4, engines=2`` (the mode column carries event_driven / event_mode; a
    pipeline knob ``*_stages``, ``bank_readers`` or ``proj_fanin`` at its default of 1, and
    ``proj_lanes`` at its default of the lanes, are not shown)."""
    shown = []
    for k, v in knobs.items():
        if v is None or isinstance(v, bool) or k == "event_mode" or (k == "input_mode" and v == "direct") \
                or ((k.endswith("_stages") or k in ("bank_readers", "proj_fanin")) and v == 1) \
                or (k == "proj_lanes" and v == knobs.get("lanes")):
            continue
        shown.append(f"{k}={v}")
    return ", ".join(shown)


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}"

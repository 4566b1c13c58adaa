"""Seeded, replayable randomized verification campaign of every registered core (``snnhw fuzz``).

A campaign is a list of *cases*. Case K of campaign seed S is a pure function of (S, K) and
the campaign's size limits (:class:`FuzzLimits`) and sequence count:

* a **configuration** (:class:`FuzzConfig`): a core kind drawn from the registry
  (:mod:`snnhw.hw.registry`), the keyword arguments of that kind's random model factory
  (:mod:`snnhw.quant.synthetic`: D, H, T, layers, classes, widths, encoding, non-spiking gate,
  leak shape and rounding, head, saturating registers) and a value for every knob of the kind's knob class
  (:mod:`snnhw.hw.knobs`: lanes, fanin, engines, event-driven variant, input mode, head in
  hardware, projection fanin, pipeline stages, trace port). A draw that the generator
  rejects — the model factory, or the core's schedule (where :func:`snnhw.hw.generate.generate`
  checks every knob against the model) raising ``ValueError``/``TypeError`` — is redrawn,
  never reported;
* **sequences**: random inputs (:func:`snnhw.quant.synthetic.random_inputs`) and adversarial
  ones (every element at the largest / smallest input code, all zero, random extremes, N = 1,
  a long N), in random order;
* **run modes** (:class:`snnhw.sim.stimulus.Mode`): isolated sequences at full rate with exact
  cycle counts, then one or two back-to-back modes under random source-idle and sink
  backpressure patterns (``random:P`` / ``every:K``).

A case is one Verilog generation, one simulator build and one simulator run with every
sequence in every mode (:func:`run_case`). When it fails, :func:`shrink` reduces it — fewer
sequences, one mode, fewer elements (same build), then fewer layers, no head, no trace and a
smaller H (a rebuild each) — keeping every reduction that still fails, and the shrunk case is
written as a JSON regression fixture (:func:`write_fixture`; :func:`replay_fixture` runs it
again). ``fuzz.json`` records every case; :func:`summary_lines` is the one-screen summary.

Units: times in seconds (wall clock), cycles in clock cycles of the core, widths in bits.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from snnhw.errors import UserError
from snnhw.quant.arith import LEAK_ROUNDINGS
from snnhw.sim.stimulus import Mode, Stimulus

FUZZ_FORMAT = "snnhw-fuzz"
FIXTURE_FORMAT = "snnhw-fuzz-case"
FUZZ_VERSION = 1

MAX_REDRAWS = 1000
"""Draws tried for one case before giving up (a knob space the generators always reject)."""


@dataclass(frozen=True)
class FuzzLimits:
    """Size limits of the drawn configurations and sequences (small, so that a build is fast).

    Attributes:
        max_hidden: largest H (units per layer); H is drawn uniformly in 1..max_hidden.
        max_input: largest D (features per element).
        max_T: largest T (time steps per element; spiking core).
        max_width: largest lanes and fanin.
        max_length: largest N of a random or adversarial sequence.
        long_length: N of the "long" adversarial sequence.
    """

    max_hidden: int = 16
    max_input: int = 8
    max_T: int = 6
    max_width: int = 8
    max_length: int = 10
    long_length: int = 32

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), int) or getattr(self, f.name) < 1:
                raise UserError(f"--{f.name.replace('_', '-')} must be an integer ≥ 1, not {getattr(self, f.name)!r}")


# ------------------------------------------------------------------------------ configurations

def _leak(rng: np.random.Generator) -> str | list[list[int]]:
    """A leak: a named preset (:data:`LEAK_PRESETS`) or the shift terms that the quantizer's
    :func:`~snnhw.quant.leak_fit.fit_leak` gives a λ drawn in [0.5, 1.25] with 1..3 terms."""
    from snnhw.quant.leak_fit import fit_leak
    from snnhw.quant.synthetic import LEAK_PRESETS

    if rng.random() < 0.5:
        return str(rng.choice(sorted(LEAK_PRESETS)))
    terms = fit_leak(float(rng.uniform(0.5, 1.25)), int(rng.integers(1, 4)))
    return [list(t) for t in terms]


def _common_model_args(rng: np.random.Generator, lim: FuzzLimits) -> dict[str, Any]:
    """Arguments shared by both random model factories (sizes, widths, head, saturation)."""
    return {
        "input_size": int(rng.integers(1, lim.max_input + 1)),
        "hidden_size": int(rng.integers(1, lim.max_hidden + 1)),
        "num_layers": int(rng.integers(1, 3)),
        "num_classes": int(rng.integers(2, 7)),
        "weight_bits": int(rng.integers(2, 17)),
        "input_bits": int(rng.integers(2, 13)),
        "head_hidden": 0 if rng.random() < 0.6 else int(rng.integers(1, 7)),
        "saturate": bool(rng.random() < 0.3),
    }


def _spiking_model_args(rng: np.random.Generator, lim: FuzzLimits) -> dict[str, Any]:
    """Keyword arguments of :func:`~snnhw.quant.synthetic.random_frozen_spiking`."""
    return {
        **_common_model_args(rng, lim),
        "T": int(rng.integers(1, lim.max_T + 1)),
        "nonspiking_gate": str(rng.choice(["i", "g"])),
        "encoding": str(rng.choice(["direct", "rate"])),
        "rate_bits": int(rng.integers(1, 11)),
        "leak": _leak(rng),
        "shifts": bool(rng.random() < 0.8),
        "leak_rounding": str(rng.choice(list(LEAK_ROUNDINGS))),
    }


def _baseline_model_args(rng: np.random.Generator, lim: FuzzLimits) -> dict[str, Any]:
    """Keyword arguments of :func:`~snnhw.quant.synthetic.random_frozen_baseline`."""
    return {
        **_common_model_args(rng, lim),
        "act_bits": int(rng.integers(3, 11)),
        "act_shift": int(rng.integers(8, 21)),
    }


def _model_factories() -> dict[str, tuple[Callable[[np.random.Generator, FuzzLimits], dict[str, Any]],
                                          Callable[..., Any]]]:
    """Per core kind: (draw the factory's arguments, the random model factory)."""
    from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking

    return {"spiking": (_spiking_model_args, random_frozen_spiking),
            "baseline": (_baseline_model_args, random_frozen_baseline)}


def fuzzable_kinds() -> list[str]:
    """The registered core kinds, each with its random model factory (RuntimeError when a kind
    has none: a new core must say how its random models are made before the campaign runs)."""
    from snnhw.hw.registry import core_names

    factories = _model_factories()
    missing = [name for name in core_names() if name not in factories]
    if missing:
        raise RuntimeError(f"no random model factory for core kind(s) {', '.join(missing)} (snnhw.sim.fuzz)")
    return core_names()


INT_KNOB_RANGES: dict[str, Callable[[Any, FuzzLimits], tuple[int, int]]] = {
    "lanes": lambda model, lim: (1, lim.max_width),
    "fanin": lambda model, lim: (1, lim.max_width),
    "engines": lambda model, lim: (1, model.T),
    "proj_fanin": lambda model, lim: (1, model.input_size),
    "proj_lanes": lambda model, lim: (1, lim.max_width),  # must divide lanes by a power of two (redrawn)
    "bank_readers": lambda model, lim: (1, 3),  # > 1 only for a spike queue whose fanin it divides (redrawn)
}
"""Inclusive range of the integer knobs without a declared maximum (or drawn narrower than it),
from the model and the limits; the others (the pipeline stages) are drawn over their declared
``minimum..maximum`` (:func:`snnhw.hw.knobs.int_knob`). A knob with neither is an error: a new
unbounded knob must be given its range here."""

BOOL_KNOB_P: dict[str, float] = {"trace": 0.15}
"""Probability of a switch being on (0.5 unless listed; the trace port lengthens every step)."""

AUTO_P = 0.2
"""Probability of leaving a knob with an automatic default (None) to the automatic rule."""


def _draw_knobs(rng: np.random.Generator, knobs_type: type, model: Any, lim: FuzzLimits) -> Any:
    """A value for every field of ``knobs_type`` (by its declared kind; :mod:`snnhw.hw.knobs`)."""
    values: dict[str, Any] = {}
    for f in fields(knobs_type):
        meta = f.metadata
        if f.default is None and rng.random() < AUTO_P:
            values[f.name] = None
        elif meta["kind"] == "bool":
            values[f.name] = bool(rng.random() < BOOL_KNOB_P.get(f.name, 0.5))
        elif meta["kind"] == "int":
            if f.name in INT_KNOB_RANGES:
                lo, hi = INT_KNOB_RANGES[f.name](model, lim)
            elif meta["maximum"] is not None:
                lo, hi = meta["minimum"], meta["maximum"]
            else:
                raise RuntimeError(f"no fuzz range for the integer knob {f.name!r} (snnhw.sim.fuzz.INT_KNOB_RANGES)")
            values[f.name] = int(rng.integers(lo, hi + 1))
        else:
            values[f.name] = str(rng.choice(list(meta["choices"])))
    return knobs_type(**values)


@dataclass(frozen=True)
class FuzzConfig:
    """One drawn configuration: a core kind, its random model and its knobs.

    Attributes:
        core: the core kind (:mod:`snnhw.hw.registry`).
        model_seed: seed of the random model factory.
        model: the factory's keyword arguments (JSON-able).
        knobs: the knob values as drawn (``to_manifest`` form; None = automatic).
        twin_seed: None: the factory's model; else its same-structure twin of this seed
            (:func:`~snnhw.quant.synthetic.same_structure_twin`: weights and biases permuted,
            a spiking model's neuron constants moved; the same core structure, so the compiled
            simulator of the configuration serves it).
    """

    core: str
    model_seed: int
    model: dict[str, Any]
    knobs: dict[str, Any]
    twin_seed: int | None = None

    @property
    def spec(self) -> Any:
        """The core kind's :class:`~snnhw.hw.registry.CoreSpec`."""
        from snnhw.hw.registry import core_spec

        return core_spec(self.core)

    def build_model(self) -> Any:
        """The frozen model (deterministic in ``model_seed``, ``model`` and ``twin_seed``)."""
        from snnhw.quant.synthetic import same_structure_twin

        model = _model_factories()[self.core][1](self.model_seed, **self.model)
        return model if self.twin_seed is None else same_structure_twin(model, self.twin_seed)

    def core_knobs(self) -> Any:
        """The knobs as the kind's knob class (unresolved)."""
        return self.spec.knobs_type.from_manifest(self.knobs)

    def validate(self) -> Any:
        """The model when the generator accepts this configuration; ``ValueError``/``TypeError``
        otherwise (the model factory's checks, then the core's schedule, where
        :func:`snnhw.hw.generate.generate` checks every knob against the model)."""
        model = self.build_model()
        self.spec.schedule_of(model, self.core_knobs())
        return model

    def label(self) -> str:
        """A short one-line description (model shape and the knobs that are set)."""
        m = self.model
        shape = f"D{m['input_size']} H{m['hidden_size']}" + (f" T{m['T']}" if "T" in m else "") + \
            f" layers={m['num_layers']} C{m['num_classes']} w{m['weight_bits']}"
        extra = [f"{k}={v}" for k, v in m.items() if k in ("encoding", "nonspiking_gate") or
                 (k == "saturate" and v) or (k == "head_hidden" and v)]
        if self.twin_seed is not None:
            extra.append(f"twin#{self.twin_seed}")
        knobs = [f"{k}={v}" for k, v in self.knobs.items() if v not in (None, False)]
        return " ".join([self.core, shape, *extra, "|", *knobs])

    def key(self) -> str:
        """A short hash of the configuration (names its build directory)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def case_rng(seed: int, case: int) -> np.random.Generator:
    """The random generator of case ``case`` of campaign ``seed`` (independent streams)."""
    return np.random.default_rng([int(seed), int(case)])


def draw_config(rng: np.random.Generator, lim: FuzzLimits, kinds: list[str] | None = None) -> FuzzConfig:
    """A configuration that the generator accepts; rejected draws are redrawn from ``rng``.

    The core kind is drawn once (uniformly, so that a kind whose knobs are rejected more often is
    not drawn less often); the model and the knobs are redrawn until the kind accepts them.

    Args:
        rng: the case's generator.
        lim: size limits.
        kinds: core kinds to draw from (default every registered kind).
    """
    from snnhw.hw.registry import core_spec

    factories = _model_factories()
    core = str(rng.choice(kinds or fuzzable_kinds()))
    for _ in range(MAX_REDRAWS):
        model_args = factories[core][0](rng, lim)
        model_seed = int(rng.integers(0, 2**31))
        try:
            model = factories[core][1](model_seed, **model_args)
            knobs = _draw_knobs(rng, core_spec(core).knobs_type, model, lim)
            config = FuzzConfig(core, model_seed, model_args, knobs.to_manifest())
            config.spec.schedule_of(model, knobs)
        except (ValueError, TypeError):
            continue
        return config
    raise RuntimeError(f"no accepted {core} configuration in {MAX_REDRAWS} draws")


# ------------------------------------------------------------------------------------ sequences

SEQUENCE_KINDS = ("max", "min", "zero", "extreme", "n1", "long")
"""Adversarial sequences (besides "random"): every value at the largest / smallest input code,
all zero, each value at one of the two extremes, a random N = 1 sequence, a random long one."""


def input_range(model: Any, mode: str) -> tuple[int, int]:
    """Smallest and largest input code of one input lane (``docs/hw-interface.md``): direct x_q is
    signed ``input_bits``; rate x_q is ±(2**rate_bits − 1); host spikes are in {−1, 0, 1}."""
    from snnhw.hw.knobs import InputMode
    from snnhw.quant import arith

    if mode == InputMode.SPIKES:
        return -1, 1
    if mode == InputMode.RATE:
        top = (1 << model.rate_bits) - 1
        return -top, top
    return arith.signed_range(model.input_bits)


def draw_sequences(rng: np.random.Generator, model: Any, mode: str, count: int,
                   lim: FuzzLimits) -> tuple[list[str], list[np.ndarray]]:
    """``count`` sequences for ``model`` in input mode ``mode``: the adversarial kinds (as many as
    fit) and random ones, shuffled.

    Returns (kinds, inputs): each input int64 [N, D] (direct, rate) or [N, T, D] (spikes).
    """
    from snnhw.hw.knobs import InputMode
    from snnhw.quant.synthetic import random_inputs

    spikes = mode == InputMode.SPIKES
    kinds = list(rng.permutation(SEQUENCE_KINDS)[:count]) + ["random"] * max(0, count - len(SEQUENCE_KINDS))
    kinds = [str(k) for k in rng.permutation(kinds)]
    lo, hi = input_range(model, mode)
    shape = (model.T, model.input_size) if spikes else (model.input_size,)
    out = []
    for kind in kinds:
        n = {"n1": 1, "long": lim.long_length}.get(kind, int(rng.integers(1, lim.max_length + 1)))
        if kind in ("random", "n1", "long"):
            x, _ = random_inputs(model, int(rng.integers(0, 2**31)), 1, n, vary_lengths=False, spikes=spikes)
            values = x[0]
        elif kind == "extreme":
            values = rng.choice(np.array([lo, hi]), size=(n, *shape))
        else:
            values = np.full((n, *shape), {"max": hi, "min": lo, "zero": 0}[kind])
        out.append(np.asarray(values, dtype=np.int64))
    return kinds, out


def _pattern(rng: np.random.Generator) -> str:
    """A stall pattern (:func:`snnhw.sim.stimulus.check_inserter`): none, random:P or every:K."""
    kind = rng.choice(["none", "random", "random", "every"])
    if kind == "random":
        return f"random:{float(rng.uniform(0.05, 0.8)):.2f}"
    if kind == "every":
        return f"every:{int(rng.integers(2, 6))}"
    return "none"


def draw_modes(rng: np.random.Generator) -> list[Mode]:
    """Isolated full-rate mode (exact cycles), then one or two back-to-back modes with random
    idle / backpressure patterns (data checked)."""
    modes = [Mode("isolated", "none", "none", True, int(rng.integers(0, 2**31)), isolate=True)]
    for k in range(int(rng.integers(1, 3))):
        modes.append(Mode(f"stalls{k + 1}", _pattern(rng), _pattern(rng), False, int(rng.integers(0, 2**31))))
    return modes


# ---------------------------------------------------------------------------------------- cases

@dataclass
class FuzzCase:
    """Everything one case simulates.

    Attributes:
        seed / index: campaign seed and case index (K) it was derived from.
        config: the configuration.
        kinds: the kind of each sequence ("random" or one of :data:`SEQUENCE_KINDS`).
        inputs: per sequence int64 [N, D] or [N, T, D].
        modes: run modes.
        corrupt: test hook: (sequence, word) of one expected output word changed by +1 (the word
            index modulo the sequence's word count), or None. A case with it must fail.
    """

    seed: int
    index: int
    config: FuzzConfig
    kinds: list[str]
    inputs: list[np.ndarray]
    modes: list[Mode]
    corrupt: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        """The case as a fixture document (inputs as explicit lists)."""
        return {"format": FIXTURE_FORMAT, "version": FUZZ_VERSION, "seed": self.seed, "case": self.index,
                "config": asdict(self.config),
                "sequences": [{"kind": k, "inputs": x.tolist()} for k, x in zip(self.kinds, self.inputs)],
                "modes": [asdict(m) for m in self.modes],
                "corrupt": list(self.corrupt) if self.corrupt is not None else None}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FuzzCase:
        """A case from :meth:`to_json`."""
        if doc.get("format") != FIXTURE_FORMAT or doc.get("version") != FUZZ_VERSION:
            raise UserError(f"not an snnhw fuzz fixture of version {FUZZ_VERSION}")
        return cls(seed=doc["seed"], index=doc["case"], config=FuzzConfig(**doc["config"]),
                   kinds=[s["kind"] for s in doc["sequences"]],
                   inputs=[np.asarray(s["inputs"], dtype=np.int64) for s in doc["sequences"]],
                   modes=[Mode(**m) for m in doc["modes"]],
                   corrupt=tuple(doc["corrupt"]) if doc.get("corrupt") is not None else None)


def make_case(seed: int, index: int, sequences: int, lim: FuzzLimits, *, kinds: list[str] | None = None,
              corrupt: tuple[int, int] | None = None, models_per_config: int = 1) -> FuzzCase:
    """Case ``index`` of campaign ``seed`` with ``sequences`` sequences (a pure function of the arguments).

    With ``models_per_config`` M > 1, cases come in groups of M: case K takes the configuration
    of group K // M (drawn from :func:`case_rng` ``(seed, K // M)``), the first case of a group
    its model as drawn, the others same-structure twins of it (``twin_seed``), so one
    compiled simulator serves the group; sequences and modes come from the stream (seed, K, M).
    M = 1 gives the cases of earlier campaigns.
    """
    rng = case_rng(seed, index // models_per_config)
    config = draw_config(rng, lim, kinds)
    if models_per_config > 1:
        rng = np.random.default_rng([int(seed), int(index), int(models_per_config)])
        if index % models_per_config:
            config = replace(config, twin_seed=int(rng.integers(0, 2**31)))
    model = config.build_model()
    mode = config.spec.schedule_of(model, config.core_knobs()).input_mode
    seq_kinds, inputs = draw_sequences(rng, model, mode, sequences, lim)
    return FuzzCase(seed, index, config, seq_kinds, inputs, draw_modes(rng), corrupt)


def _batch(inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded batch [B, N_max, ...] and lengths [B] of the sequences."""
    lengths = np.array([len(x) for x in inputs], dtype=np.int64)
    out = np.zeros((len(inputs), int(lengths.max()), *inputs[0].shape[1:]), dtype=np.int64)
    for b, x in enumerate(inputs):
        out[b, :len(x)] = x
    return out, lengths


@dataclass
class CaseOutcome:
    """What one simulation of a case found (a ``fuzz.json`` entry's measurements).

    Attributes:
        passed: every word, trace record and checked cycle count matched.
        message: "" or the located first mismatch (or the simulator's first message).
        first_mismatch: the testbench's located mismatch or None.
        sequences: sequences per mode; elements: Σ N over the sequences.
        sequence_runs: sequences simulated over all modes run.
        mismatches: sequence runs whose status is not "ok" (1 when the simulation died without
            a report, or the Verilog could not be generated or built).
        lost_words / extra_words: output words missing (timeout, early ``last``) / too many
            (late ``last``, a word after the final sequence), as far as the testbench's first
            mismatch tells (lower bounds; 0 when the stream was intact).
        cycles_checked / cycles_exact: isolated-mode sequences with a cycle count / matching it.
        sim_cycles: clock cycles simulated over all modes.
        generate_s / build_s / run_s: Verilog generation, simulator build, simulation (s).
        build_reused: the compiled simulator of an earlier case or run served (no build).
    """

    passed: bool
    message: str
    first_mismatch: dict[str, Any] | None
    sequences: int
    elements: int
    sequence_runs: int
    mismatches: int
    lost_words: int
    extra_words: int
    cycles_checked: int
    cycles_exact: int
    sim_cycles: int
    generate_s: float
    build_s: float
    run_s: float
    build_reused: bool = False


def _stream_words(stim: Stimulus, report: dict[str, Any]) -> tuple[int, int]:
    """(lost, extra) output words told by the first mismatch of the failing mode (lower bounds)."""
    first = report.get("first_mismatch")
    if not first:
        return 0, 0
    kind = first.get("kind")
    if kind == "extra":
        return 0, 1
    if kind == "timeout":
        k = first["sequence"]
        return (len(stim.sequences[k].expected) - (first.get("word") or 0)
                + sum(len(s.expected) for s in stim.sequences[k + 1:])), 0
    if kind == "last":
        if first.get("got_last"):  # the sequence ended early
            return len(stim.sequences[first["sequence"]].expected) - first["word"] - 1, 0
        return 0, 1
    return 0, 0


def run_case(case: FuzzCase, work_dir: Path, sim: str, build_root: Path | None = None) -> CaseOutcome:
    """Generate, build and simulate ``case`` once (every sequence in every mode); compare with
    the golden model. The compiled simulators live in ``build_root`` (default ``work_dir/builds``),
    one per core structure (:func:`snnhw.sim.runner.simulate`): reused by later runs of the same
    configuration (shrinking) and by other models of it (``twin_seed``)."""
    from snnhw.hw.generate import generate
    from snnhw.sim.runner import simulate
    from snnhw.sim.stimulus import build_stimulus
    from snnhw.sim.verify import failure_message

    config = case.config
    model = config.build_model()
    knobs = config.core_knobs()
    rtl = work_dir / f"rtl-{config.key()}"
    x, lengths = _batch(case.inputs)

    def broken(message: str, generate_s: float = 0.0) -> CaseOutcome:
        """A configuration the schedule accepted but the generator or the simulator's build did not."""
        return CaseOutcome(False, message, None, len(case.inputs), int(lengths.sum()), 0, 1, 0, 0, 0, 0, 0,
                           round(generate_s, 3), 0.0, 0.0)

    t0 = time.perf_counter()
    verilog = rtl / config.spec.verilog_file
    if not verilog.is_file():
        try:
            generate([(model, knobs)], rtl)
        except (ValueError, TypeError) as exc:
            return broken(f"generate failed: {exc}", time.perf_counter() - t0)
    generate_s = time.perf_counter() - t0
    stim = build_stimulus(model, config.spec.schedule_of(model, knobs), x, lengths, modes=case.modes)
    if case.corrupt is not None:
        seq, word = case.corrupt
        if seq < len(stim.sequences):
            stim = stim.corrupted(seq, word % len(stim.sequences[seq].expected))
    try:
        run = simulate(stim, [verilog], work_dir / "run", sim=sim, build_dir=build_root or work_dir / "builds")
    except RuntimeError as exc:  # the simulator could not build the generated Verilog
        return broken(str(exc), generate_s)
    modes = run.report.get("modes", [])
    records = [s for m in modes for s in m["sequences"]]
    isolated = [s for m in modes if m.get("check_cycles") for s in m["sequences"] if s["cycles_expected"] is not None]
    lost, extra = _stream_words(stim, run.report)
    return CaseOutcome(
        passed=run.passed,
        message="" if run.passed else failure_message(run.first_mismatch, run.sim.messages),
        first_mismatch=run.first_mismatch,
        sequences=len(stim.sequences),
        elements=int(lengths.sum()),
        sequence_runs=len(records),
        mismatches=sum(s["status"] != "ok" for s in records) + (0 if run.passed or records else 1),
        lost_words=lost,
        extra_words=extra,
        cycles_checked=len(isolated),
        cycles_exact=sum(s["cycles_measured"] == s["cycles_expected"] for s in isolated),
        sim_cycles=sum(m.get("sim_cycles", 0) for m in modes),
        generate_s=round(generate_s, 3),
        build_s=round(run.sim.build_s, 3),
        run_s=round(run.sim.test_s, 3),
        build_reused=run.sim.build_reused,
    )


# -------------------------------------------------------------------------------------- shrink

@dataclass
class ShrinkResult:
    """A shrunk failing case.

    Attributes:
        case: the smallest failing case found.
        outcome: its (failing) outcome.
        runs: simulations tried while shrinking (each of a candidate).
        steps: the reductions kept, in order (e.g. "sequences 200 → 1").
    """

    case: FuzzCase
    outcome: CaseOutcome
    runs: int
    steps: list[str] = field(default_factory=list)


def _config_candidates(config: FuzzConfig) -> Iterator[tuple[str, FuzzConfig]]:
    """Smaller configurations: one layer, no hidden head layer, no head in hardware, no trace
    port, then H halved."""
    m, k = config.model, config.knobs
    if m["num_layers"] > 1:
        yield "one layer", replace(config, model={**m, "num_layers": 1})
    if m.get("head_hidden"):
        yield "no hidden head layer", replace(config, model={**m, "head_hidden": 0})
    if k.get("head_in_hw"):
        yield "no head in hardware", replace(config, knobs={**k, "head_in_hw": False})
    if k.get("trace"):
        yield "no trace port", replace(config, knobs={**k, "trace": False})
    hidden = m["hidden_size"]
    while hidden > 1:
        hidden //= 2
        yield f"H = {hidden}", replace(config, model={**m, "hidden_size": hidden})


def shrink(case: FuzzCase, outcome: CaseOutcome, work_dir: Path, sim: str, *, max_runs: int = 24,
           build_root: Path | None = None) -> ShrinkResult:
    """Reduce a failing case while it still fails (greedy; at most ``max_runs`` simulations).

    Order, all on the same build: modes (the failing one alone), sequences (the failing one
    alone, else the prefix up to it, then chunks removed, halving the chunk size — the core is
    not reset between sequences, so a failure may need its predecessors), elements of each
    sequence (the shortest failing prefix among N = 1, 2, 4, ...); then the configuration
    (:func:`_config_candidates`; one rebuild each, a candidate the generator rejects is skipped).
    ``build_root``: as in :func:`run_case`.
    """
    best, best_out, runs, steps = case, outcome, 0, []

    def attempt(candidate: FuzzCase) -> CaseOutcome | None:
        nonlocal runs
        runs += 1
        result = run_case(candidate, work_dir, sim, build_root)
        return None if result.passed else result

    def subset(keep: list[int]) -> FuzzCase:
        return replace(best, kinds=[best.kinds[i] for i in keep], inputs=[best.inputs[i] for i in keep])

    failing_mode = (best_out.first_mismatch or {}).get("mode")
    if len(best.modes) > 1 and failing_mode and runs < max_runs:
        candidate = replace(best, modes=[m for m in best.modes if m.name == failing_mode])
        result = attempt(candidate) if candidate.modes else None
        if result is not None:
            steps.append(f"modes → {failing_mode}")
            best, best_out = candidate, result
    failing = (best_out.first_mismatch or {}).get("sequence")
    if failing is not None and failing < len(best.inputs):
        for what, keep in (("the failing sequence", [failing]), ("the prefix to it", list(range(failing + 1)))):
            if len(keep) < len(best.inputs) and runs < max_runs:
                candidate = subset(keep)
                result = attempt(candidate)
                if result is not None:
                    steps.append(f"sequences {len(best.inputs)} → {len(keep)} ({what})")
                    best, best_out = candidate, result
                    break
    chunk = len(best.inputs) // 2
    while chunk >= 1 and runs < max_runs:
        for start in range(0, len(best.inputs), chunk):
            keep = [i for i in range(len(best.inputs)) if not start <= i < start + chunk]
            if not keep or runs >= max_runs:
                continue
            candidate = subset(keep)
            result = attempt(candidate)
            if result is not None:
                steps.append(f"sequences {len(best.inputs)} → {len(keep)}")
                best, best_out = candidate, result
                break
        else:
            chunk //= 2
    for k in range(len(best.inputs)):
        n = len(best.inputs[k])
        lengths = [1 << j for j in range(n.bit_length()) if (1 << j) < n]
        for length in lengths:
            if runs >= max_runs:
                break
            inputs = list(best.inputs)
            inputs[k] = inputs[k][:length]
            candidate = replace(best, inputs=inputs)
            result = attempt(candidate)
            if result is not None:
                steps.append(f"sequence {k}: N {n} → {length}")
                best, best_out = candidate, result
                break
    progress = True
    while progress and runs < max_runs:
        progress = False
        for what, config in _config_candidates(best.config):
            if runs >= max_runs:
                break
            try:
                config.validate()
            except (ValueError, TypeError):
                continue
            candidate = replace(best, config=config)
            result = attempt(candidate)
            if result is not None:
                steps.append(what)
                best, best_out, progress = candidate, result, True
                break
    return ShrinkResult(best, best_out, runs, steps)


# ------------------------------------------------------------------------------------ fixtures

def write_fixture(result: ShrinkResult, fixtures_dir: Path, sim: str) -> Path:
    """Write the shrunk case as ``fuzz-s<seed>-c<case>.json`` in ``fixtures_dir`` (created), with
    what it found (message, first mismatch, simulator, shrink steps)."""
    fixtures_dir = Path(fixtures_dir)
    fixtures_dir.mkdir(parents=True, exist_ok=True)
    doc = result.case.to_json()
    doc["found"] = {"simulator": sim, "message": result.outcome.message,
                    "first_mismatch": result.outcome.first_mismatch, "shrink_steps": result.steps}
    path = fixtures_dir / f"fuzz-s{result.case.seed}-c{result.case.index}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load_fixture(path: Path) -> FuzzCase:
    """The case of a fixture file (a one-line error for anything else)."""
    try:
        doc = json.loads(Path(path).read_text())
        return FuzzCase.from_json(doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a readable fuzz fixture ({exc})") from None


def replay_fixture(path: Path, work_dir: Path, sim: str | None = None) -> tuple[FuzzCase, CaseOutcome]:
    """Simulate a fixture's case again. A fixture without ``corrupt`` is a regression: it must
    pass once its bug is fixed; one with ``corrupt`` (written by the tests) must fail."""
    from snnhw.sim.runner import default_simulator

    case = load_fixture(path)
    return case, run_case(case, Path(work_dir), sim or default_simulator())


# ------------------------------------------------------------------------------------ campaign

@dataclass
class CaseRecord:
    """One ``fuzz.json`` entry: the case, its configuration, its outcome and what shrinking found."""

    case: int
    seed: int
    config: dict[str, Any]
    label: str
    sequence_kinds: dict[str, int]
    modes: list[dict[str, Any]]
    outcome: dict[str, Any]
    replay: str
    shrink: dict[str, Any] | None = None
    fixture: str | None = None


def _replay_command(seed: int, index: int, sequences: int, lim: FuzzLimits, kinds: list[str] | None,
                    models_per_config: int = 1) -> str:
    """The ``snnhw fuzz`` command line that replays one case."""
    default = FuzzLimits()
    opts = [f"--{f.name.replace('_', '-')} {getattr(lim, f.name)}" for f in fields(lim)
            if getattr(lim, f.name) != getattr(default, f.name)]
    opts += [f"--core {k}" for k in kinds or []]
    opts += [f"--models-per-config {models_per_config}"] if models_per_config != 1 else []
    return " ".join(["snnhw fuzz", f"--seed {seed}", f"--case {index}", f"--sequences {sequences}", *opts])


def fuzz_case(seed: int, index: int, sequences: int, lim: FuzzLimits, work_root: Path, sim: str, *,
              kinds: list[str] | None = None, fixtures_dir: Path | None = None, shrink_runs: int = 24,
              keep: bool = False, corrupt: tuple[int, int] | None = None,
              models_per_config: int = 1) -> dict[str, Any]:
    """Draw, run and (on a failure) shrink and record case ``index``; returns its ``fuzz.json`` entry.

    The case's work directory (``work_root/case-<K>``) is removed after a pass unless ``keep``;
    the compiled simulators are shared by every case in ``work_root/builds``.
    A failure is shrunk with at most ``shrink_runs`` simulations (0: not shrunk) and written as a
    fixture into ``fixtures_dir`` (None: no fixture).
    """
    case = make_case(seed, index, sequences, lim, kinds=kinds, corrupt=corrupt, models_per_config=models_per_config)
    work = Path(work_root) / f"case-{index:05d}"
    builds = Path(work_root) / "builds"
    outcome = run_case(case, work, sim, builds)
    record = CaseRecord(case=index, seed=seed, config=asdict(case.config), label=case.config.label(),
                        sequence_kinds={k: case.kinds.count(k) for k in sorted(set(case.kinds))},
                        modes=[asdict(m) for m in case.modes], outcome=asdict(outcome),
                        replay=_replay_command(seed, index, sequences, lim, kinds, models_per_config))
    if not outcome.passed:
        result = shrink(case, outcome, work, sim, max_runs=shrink_runs, build_root=builds)
        record.shrink = {"runs": result.runs, "steps": result.steps, "label": result.case.config.label(),
                         "sequences": len(result.case.inputs), "elements": result.outcome.elements,
                         "message": result.outcome.message}
        if fixtures_dir is not None:
            record.fixture = str(write_fixture(result, fixtures_dir, sim))
    if outcome.passed and not keep:
        shutil.rmtree(work, ignore_errors=True)
    return asdict(record)


@dataclass
class CampaignReport:
    """``fuzz.json``: the campaign's settings, every case that ran, and totals."""

    seed: int
    simulator: str
    limits: dict[str, Any]
    sequences: int
    cases_requested: list[int]
    cases: list[dict[str, Any]]
    stopped_by_budget: bool
    wall_s: float
    machine: dict[str, Any]

    def totals(self) -> dict[str, Any]:
        """Aggregates over the cases that ran (times in s; sequences/s over the simulation time)."""
        outs = [c["outcome"] for c in self.cases]
        run_s = sum(o["run_s"] for o in outs)
        runs = sum(o["sequence_runs"] for o in outs)
        return {
            "cases": len(self.cases),
            "failed": sum(not o["passed"] for o in outs),
            "by_core": {k: sum(c["config"]["core"] == k for c in self.cases)
                        for k in sorted({c["config"]["core"] for c in self.cases})},
            "sequences": sum(o["sequences"] for o in outs),
            "sequence_runs": runs,
            "elements": sum(o["elements"] for o in outs),
            "mismatches": sum(o["mismatches"] for o in outs),
            "lost_words": sum(o["lost_words"] for o in outs),
            "extra_words": sum(o["extra_words"] for o in outs),
            "cycles_checked": sum(o["cycles_checked"] for o in outs),
            "cycles_exact": sum(o["cycles_exact"] for o in outs),
            "sim_cycles": sum(o["sim_cycles"] for o in outs),
            "generate_s": round(sum(o["generate_s"] for o in outs), 2),
            "build_s": round(sum(o["build_s"] for o in outs), 2),
            "build_s_max": max((o["build_s"] for o in outs), default=0.0),
            "builds_reused": sum(o.get("build_reused", False) for o in outs),
            "run_s": round(run_s, 2),
            "sequence_runs_per_s": round(runs / run_s, 2) if run_s else None,
        }

    def to_json(self) -> dict[str, Any]:
        """The ``fuzz.json`` document."""
        return {"format": FUZZ_FORMAT, "version": FUZZ_VERSION, **asdict(self), "totals": self.totals()}


def _machine() -> dict[str, Any]:
    """Where the campaign ran: host name, CPU count, load average at the end (1, 5, 15 min)."""
    import os
    import platform

    return {"host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "loadavg": [round(v, 2) for v in os.getloadavg()]}


def campaign(
    out_dir: Path,
    *,
    seed: int = 0,
    cases: int = 20,
    sequences: int = 50,
    case: int | None = None,
    sim: str | None = None,
    jobs: int = 1,
    time_budget: float | None = None,
    limits: FuzzLimits | None = None,
    kinds: list[str] | None = None,
    fixtures_dir: Path | None = None,
    shrink_runs: int = 24,
    keep: bool = False,
    progress: bool = True,
    corrupt: tuple[int, int] | None = None,
    models_per_config: int = 1,
) -> CampaignReport:
    """Run cases 0..``cases``−1 of campaign ``seed`` (or only ``case``); write ``out_dir/fuzz.json``.

    Args:
        out_dir: report directory (``fuzz.json``; ``work/case-<K>`` per case).
        seed: campaign seed S; case K is a pure function of (S, K, ``sequences``, ``limits``, ``kinds``).
        cases: N cases; case: replay only case K (``cases`` is then ignored).
        sequences: M sequences per case (every mode runs all of them).
        sim: "icarus" or "verilator" (default :func:`~snnhw.sim.runner.default_simulator`).
        jobs: cases run in parallel (processes); each runs one simulator at a time.
        time_budget: seconds after which no further case is started (running ones finish);
            None: no limit.
        limits: size limits (default :class:`FuzzLimits`).
        kinds: core kinds to draw from (default every registered kind).
        fixtures_dir: where shrunk failing cases are written (None: none written).
        shrink_runs: most simulations spent shrinking one failing case (0: no shrinking).
        keep: keep the work directories of passing cases and the compiled simulators
            (``work/builds``; removed at the end otherwise).
        progress: tqdm bar over the cases.
        corrupt: test hook (:class:`FuzzCase`): every case gets one wrong expected word.
        models_per_config: M models per drawn configuration (:func:`make_case`); one build
            serves the M cases of a group.
    """
    from tqdm import tqdm

    from snnhw.sim.runner import default_simulator, simulator_missing

    t0 = time.perf_counter()
    if cases < 1 or sequences < 1 or jobs < 1 or models_per_config < 1:
        raise UserError("--cases, --sequences, --jobs and --models-per-config must be at least 1")
    if seed < 0 or (case is not None and case < 0):
        raise UserError("--seed and --case must be ≥ 0")
    if time_budget is not None and time_budget <= 0:
        raise UserError("--time-budget must be a positive number of seconds")
    if shrink_runs < 0:
        raise UserError("--shrink-runs must be ≥ 0")
    known = fuzzable_kinds()
    for kind in kinds or []:
        if kind not in known:
            raise UserError(f"unknown core kind {kind!r} (known: {', '.join(known)})")
    sim = sim or default_simulator()
    reason = simulator_missing(sim)
    if reason:
        raise UserError(f"{sim}: {reason}")
    lim = limits or FuzzLimits()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_root = out_dir / "work"
    indices = [case] if case is not None else list(range(cases))
    deadline = None if time_budget is None else t0 + time_budget
    args = {"kinds": kinds, "fixtures_dir": fixtures_dir, "shrink_runs": shrink_runs, "keep": keep, "corrupt": corrupt,
            "models_per_config": models_per_config}
    records: list[dict[str, Any]] = []
    stopped = False
    bar = tqdm(total=len(indices), desc="fuzz", unit="case", disable=not progress)

    def write() -> CampaignReport:
        """Write ``fuzz.json`` of the cases so far (after every case: an interrupted campaign
        leaves the report of what ran)."""
        report = CampaignReport(seed=seed, simulator=sim, limits=asdict(lim), sequences=sequences,
                                cases_requested=indices, cases=sorted(records, key=lambda r: r["case"]),
                                stopped_by_budget=stopped, wall_s=round(time.perf_counter() - t0, 2),
                                machine=_machine())
        (out_dir / "fuzz.json").write_text(json.dumps(report.to_json(), indent=1) + "\n")
        return report

    def done(record: dict[str, Any]) -> None:
        records.append(record)
        write()
        bar.update(1)
        bar.set_postfix(failed=sum(not r["outcome"]["passed"] for r in records))

    pending = list(indices)
    if jobs == 1:
        while pending:
            if deadline is not None and time.perf_counter() >= deadline:
                stopped = True
                break
            done(fuzz_case(seed, pending.pop(0), sequences, lim, work_root, sim, **args))
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            running: set[concurrent.futures.Future[dict[str, Any]]] = set()
            while pending or running:
                while pending and len(running) < jobs:
                    if deadline is not None and time.perf_counter() >= deadline:
                        stopped = True
                        pending.clear()
                        break
                    running.add(pool.submit(fuzz_case, seed, pending.pop(0), sequences, lim, work_root, sim, **args))
                if running:
                    finished, running = concurrent.futures.wait(running, return_when="FIRST_COMPLETED")
                    for fut in finished:
                        done(fut.result())
    bar.close()
    if not keep:
        shutil.rmtree(work_root / "builds", ignore_errors=True)
    return write()


def summary_lines(report: CampaignReport, out_dir: Path) -> list[str]:
    """The one-screen summary of a campaign."""
    t = report.totals()
    status = "PASS" if t["failed"] == 0 else "FAIL"
    lines = [
        f"{status} snnhw fuzz: seed {report.seed}, {t['cases']}/{len(report.cases_requested)} cases "
        f"({', '.join(f'{k} {v}' for k, v in t['by_core'].items())}) on {report.simulator}"
        + (" — stopped by the time budget" if report.stopped_by_budget else ""),
        (f"  {t['sequences']} sequences ({t['elements']} elements) × modes = {t['sequence_runs']} sequence runs, "
         f"{t['sim_cycles']} cycles simulated"),
        (f"  mismatching sequence runs {t['mismatches']}, lost words {t['lost_words']}, extra words "
         f"{t['extra_words']}; cycle counts exact {t['cycles_exact']}/{t['cycles_checked']}"),
        (f"  time: wall {report.wall_s} s; generate {t['generate_s']} s, build {t['build_s']} s "
         f"(max {t['build_s_max']} s; {t['builds_reused']} cases reused a build), simulate {t['run_s']} s ({t['sequence_runs_per_s']} sequence runs/s)"),
    ]
    for c in report.cases:
        if not c["outcome"]["passed"]:
            lines.append(f"  case {c['case']} FAIL [{c['label']}]: {c['outcome']['message']}")
            if c["shrink"]:
                lines.append(f"     shrunk ({', '.join(c['shrink']['steps']) or 'nothing removed'}): "
                             f"{c['shrink']['message']}")
            if c["fixture"]:
                lines.append(f"     fixture {c['fixture']}")
            lines.append(f"     replay: {c['replay']}")
    lines.append(f"report: {Path(out_dir) / 'fuzz.json'}")
    return lines

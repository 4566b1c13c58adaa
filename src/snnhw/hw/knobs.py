"""Typed hardware knobs of every core kind, defined once.

A knob class is a frozen dataclass whose fields are declared with :func:`int_knob`,
:func:`bool_knob` or :func:`choice_knob`: the field's default, its help text and its range live
in one place, and from them come

* validation on construction (``ValueError`` with a one-line message; the CLI prints it);
* :meth:`CoreKnobs.resolved` — the automatic defaults filled in for a model (one rule for every
  command, :func:`auto_width` / :func:`auto_engines`);
* :meth:`CoreKnobs.to_manifest` / :meth:`CoreKnobs.from_manifest` — the ``knobs`` object of a
  core manifest;
* :func:`add_knob_options` / :func:`knobs_from_args` — the command-line options of every
  subcommand that builds cores (``generate``, ``verify``, ``build``, ``demo``), so each knob the
  components accept is reachable from the CLI with the same name, default and check.

The knob classes of the registered cores are :class:`SpikingKnobs` and :class:`BaselineKnobs`
(see :mod:`snnhw.hw.registry`).
"""

from __future__ import annotations

import argparse
import enum
from dataclasses import asdict, dataclass, field, fields, replace
from math import ceil
from typing import Any, Iterable, TypeVar

K = TypeVar("K", bound="CoreKnobs")


class InputMode(enum.StrEnum):
    """How layer-1 input reaches the spiking core (``docs/hw-interface.md``)."""

    DIRECT = "direct"
    """Quantized x_q; the core projects it with a MAC (direct-encoded models)."""
    RATE = "rate"
    """Quantized x_q; the on-chip xorshift32 encoder makes the spikes (rate-encoded models)."""
    SPIKES = "spikes"
    """The host sends the encoded spikes u(n, t) (rate-encoded models)."""


class EventMode(enum.StrEnum):
    """Event-driven variants of the wavefront (``docs/hw-spiking-core.md``)."""

    ENGINE = "engine"
    """Every engine skips its own zero chunks (own sequencer and weight read port)."""
    SHARED = "shared"
    """One broadcast weight read; a chunk is skipped when it is zero in every engine of the pass."""
    QUEUE = "queue"
    """Spike queues (address events): the synapses are banked (B = F/R banks, bank b: synapses
    m·B + b; R = ``bank_readers``), each engine issues per beat the next R nonzero spikes of every
    bank, reading their weight columns through R ports of the bank's own memory; a unit group takes
    max(1, ⌈the fullest bank / R⌉) beats."""
    QUEUE_SHARED = "queue-shared"
    """Spike queues shared by the engines of a pass: a bank's queue holds the synapses that are
    nonzero in any engine, one weight column read per bank and beat is broadcast to all engines
    (each adds it under its own spike), so an engine-independent synapse is read once per pass;
    a unit group takes max(1, ⌈the fullest bank of the union / R⌉) beats."""

    @property
    def per_engine(self) -> bool:
        """Every engine has its own sequencer and weight read ports (the engines leave lockstep)."""
        return self in (EventMode.ENGINE, EventMode.QUEUE)

    @property
    def queued(self) -> bool:
        """Beats issue spike addresses from per-bank queues (one weight memory per lane bank)."""
        return self in (EventMode.QUEUE, EventMode.QUEUE_SHARED)


TREE_STAGES = (1, 2)
"""Pipeline depths in front of the synapse adder trees (:class:`~snnhw.hw.engine.Engine`)."""
GATE_STAGES = (1, 2, 3)
"""Pipeline depths of the gate neurons (:class:`~snnhw.hw.neuron_lanes.GateNeurons`)."""
CELL_STAGES = (1, 2, 3, 4, 5, 6)
"""Pipeline depths of the cell update (:class:`~snnhw.hw.cell_update.CellUpdate`)."""
QUEUE_STAGES = (1, 2, 3)
"""Pipeline depths of the spike-queue sequencer (:class:`~snnhw.hw.sequencer.QueueSequencer`)."""


def check_stages(owner: str, gate_stages: int, cell_stages: int, tree_stages: int = 1) -> None:
    """Raise ``ValueError`` (naming ``owner``) unless the stage counts are in :data:`GATE_STAGES`,
    :data:`CELL_STAGES` and :data:`TREE_STAGES` (the one check the schedule, the engine and the
    layer all use)."""
    for name, value, allowed in (("gate_stages", gate_stages, GATE_STAGES), ("cell_stages", cell_stages, CELL_STAGES),
                                 ("tree_stages", tree_stages, TREE_STAGES)):
        if value not in allowed:
            raise ValueError(f"{owner}{name} must be in {allowed[0]}..{allowed[-1]}, not {value!r}")


def check_queue_stages(owner: str, queue_stages: int, queued: bool) -> None:
    """Raise ``ValueError`` (naming ``owner``) unless ``queue_stages`` is in :data:`QUEUE_STAGES`
    and exceeds 1 only for an event-driven spike queue (``queued``) (the one check the schedule,
    the layer and the sequencer use)."""
    if queue_stages not in QUEUE_STAGES:
        raise ValueError(f"{owner}queue_stages must be in {QUEUE_STAGES[0]}..{QUEUE_STAGES[-1]}, not {queue_stages!r}")
    if queue_stages > 1 and not queued:
        raise ValueError(f"{owner}queue_stages ({queue_stages}) needs an event-driven spike queue "
                         "(--event-driven --event-mode queue or queue-shared)")


def check_bank_readers(owner: str, readers: int, fanin: int, queued: bool) -> None:
    """Raise ``ValueError`` (naming ``owner``) unless ``readers`` (spike-queue readers per weight
    bank) is an integer ≥ 1 that divides ``fanin`` and exceeds 1 only for an event-driven spike
    queue (``queued``) (the one check the schedule and the layer both use)."""
    if not isinstance(readers, int) or readers < 1:
        raise ValueError(f"{owner}bank_readers must be an integer ≥ 1, not {readers!r}")
    if readers > 1 and not queued:
        raise ValueError(f"{owner}bank_readers ({readers}) needs an event-driven spike queue "
                         "(--event-driven --event-mode queue or queue-shared)")
    if fanin % readers:
        raise ValueError(f"{owner}bank_readers ({readers}) must divide fanin ({fanin})")


AUTO = "automatic"
"""Help-text marker of a knob whose default is sized to the model."""


def int_knob(default: int | None, help: str, *, minimum: int = 1, maximum: int | None = None) -> Any:
    """An integer knob in ``minimum..maximum`` (no upper bound when ``maximum`` is None);
    ``default`` None means "sized to the model" (:meth:`CoreKnobs.resolved`)."""
    return field(default=default, metadata={"kind": "int", "help": help, "minimum": minimum, "maximum": maximum})


def bool_knob(help: str) -> Any:
    """A switch, off by default (a ``--flag`` on the command line)."""
    return field(default=False, metadata={"kind": "bool", "help": help})


def choice_knob(default: str | None, choices: type[enum.Enum], help: str) -> Any:
    """One of an enum's values (stored as its string); ``default`` None means "from the model"."""
    return field(default=default, metadata={"kind": "choice", "help": help,
                                             "choices": tuple(c.value for c in choices)})


def auto_width(hidden: int) -> int:
    """The automatic lanes and fanin: ``clamp(H / 8, 1, 8)`` (a lane group covers at least 8 units:
    4 for H = 32, 8 for H ≥ 64). Resources and synthesis time scale with lanes · fanin, so a
    small model gets a small core."""
    return max(1, min(8, hidden // 8))


def auto_engines(T: int, lanes: int) -> int:
    """The automatic engine count: ``clamp(⌈T · lanes / 8⌉, 1, T)`` (engines grow with the lanes:
    2 for lanes 4 at T = 4; T for lanes 8)."""
    return max(1, min(T, ceil(T * lanes / 8)))


@dataclass(frozen=True)
class CoreKnobs:
    """Base of the knob classes: validation, resolution, manifest and CLI forms."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value is None and f.default is None:
                continue
            if meta["kind"] == "int":
                low, high = meta["minimum"], meta["maximum"]
                if (not isinstance(value, int) or isinstance(value, bool) or value < low
                        or (high is not None and value > high)):
                    allowed = f"≥ {low}" if high is None else f"in {low}..{high}"
                    raise ValueError(f"{f.name} must be an integer {allowed}, not {value!r}")
            elif meta["kind"] == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{f.name} must be true or false, not {value!r}")
            else:
                choice = value.value if isinstance(value, enum.Enum) else value
                if choice not in meta["choices"]:
                    raise ValueError(f"{f.name} must be one of {', '.join(meta['choices'])}, not {value!r}")
                object.__setattr__(self, f.name, choice)

    def resolved(self: K, model: Any) -> K:
        """These knobs with every automatic (None) knob sized to ``model`` (the one default rule)."""
        return self

    def automatic(self) -> list[str]:
        """Names of the knobs left to the automatic rule (None)."""
        return [f.name for f in fields(self) if getattr(self, f.name) is None and f.metadata["kind"] == "int"]

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's ``knobs`` object (every field, JSON-able)."""
        return asdict(self)

    @classmethod
    def from_manifest(cls: type[K], doc: dict[str, Any]) -> K:
        """Knobs from a manifest's ``knobs`` object; keys that are not knobs of this core (derived
        figures such as ``passes``) are ignored, missing ones take their defaults."""
        if not isinstance(doc, dict):
            raise ValueError("the manifest's knobs are not an object")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})

    def replace(self: K, **changes: Any) -> K:
        """A copy with ``changes`` (validated)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class SpikingKnobs(CoreKnobs):
    """Knobs of the spiking wavefront core (:class:`~snnhw.hw.spiking_core.SpikingCore`)."""

    lanes: int | None = int_knob(None, "hidden units per engine per beat (L)")
    fanin: int | None = int_knob(None, "synapses per lane per beat (F)")
    engines: int | None = int_knob(None, "spiking engines per layer (E ≤ T; E < T time-multiplexes)")
    event_driven: bool = bool_knob("spiking core skips synapse chunks whose spikes are all zero")
    event_mode: str = choice_knob(EventMode.ENGINE.value, EventMode,
                                  "event-driven variant: engine (each engine skips its all-zero chunks), "
                                  "shared (one broadcast weight read), queue (per-lane spike queues: "
                                  "beats follow the nonzero spikes) or queue-shared (one queue per lane bank "
                                  "for the union of the engines' spikes, one broadcast weight read)")
    bank_readers: int = int_knob(1, "spike-queue readers per weight bank (R; event modes queue and queue-shared, "
                                    "must divide fanin): the F lanes form F/R banks of synapses m·(F/R) + b, each "
                                    "bank's queue gives its R lowest spikes per beat, read through R ports of the "
                                    "bank's weight memory (R = 2: both ports of a block RAM); fewer, larger banks "
                                    "balance better")
    queue_stages: int = int_knob(1, "spike-queue sequencer pipeline stages, 1..3 (event modes queue and "
                                    "queue-shared; 2: the beat registered between the queue heads and the weight "
                                    "memories' read addresses; 3: the spike masks registered too, the sequencer "
                                    "starting a cycle later, the queue heads loaded as registers, a group's end "
                                    "counted beside the selection chain and a bank's readers taking its spikes from "
                                    "both ends; each one more cycle per diagonal step)",
                                 maximum=QUEUE_STAGES[-1])
    input_mode: str | None = choice_knob(None, InputMode, "spiking core input: direct, rate (on-chip encoder) or "
                                                          "spikes (the host sends them)")
    head_in_hw: bool = bool_knob("put the FC head in hardware (C logits and the class on the output stream)")
    proj_fanin: int = int_knob(1, "input features per cycle of the direct-input projection MAC")
    proj_lanes: int | None = int_knob(None, "hidden units per cycle of the direct-input projection MAC (must "
                                            "divide L, L/proj_lanes a power of two): 4·proj_lanes·proj_fanin "
                                            "multipliers, ⌈H/proj_lanes⌉·⌈D/proj_fanin⌉ cycles per element "
                                            "(default L)")
    proj_stages: int = int_knob(1, "direct-input projection pipeline stages, 1..2 (2: the weight word read from its "
                                   "block RAM and the input chunk registered before the multipliers; one more cycle "
                                   "of projection latency per element)", maximum=2)
    tree_stages: int = int_knob(1, "adder-tree pipeline stages, 1..2 (2: the selected spikes and the weight word "
                                   "registered in front of the synapse adder trees, cutting the path from the beat "
                                   "through the spike selection into the trees; one more drain cycle per diagonal "
                                   "step)", maximum=TREE_STAGES[-1])
    gate_stages: int = int_knob(1, "gate-neuron pipeline stages, 1..3 (2: the pre-activations and the leaked "
                                   "membranes registered before the LIF; 3: the saturated sum registered before the "
                                   "threshold too; each a shorter clock path and one more drain cycle per diagonal "
                                   "step)", maximum=GATE_STAGES[-1])
    cell_stages: int = int_knob(1, "cell-update pipeline stages, 1..6 (2: a register between c's saturation and "
                                   "its ternary LIF; 3: another between the LIF's shifted input and leak and its "
                                   "saturating add; 4: another before its threshold; 5: another between c's sum and "
                                   "its saturation; 6: another between the threshold's comparisons and its spike and "
                                   "reset multiplexers; each a shorter clock path and one more drain cycle per "
                                   "diagonal step)", maximum=CELL_STAGES[-1])
    trace: bool = bool_knob("debug spiking core: add the trace stream of every cell's gate values "
                            "(docs/hw-spiking-core.md)")

    def resolved(self, model: Any) -> "SpikingKnobs":
        """``lanes``/``fanin`` None → :func:`auto_width` of the largest layer, ``engines`` None →
        :func:`auto_engines` of T and the lanes, ``proj_lanes`` None → the lanes."""
        width = auto_width(max(layer.hidden_size for layer in model.layers))
        lanes = width if self.lanes is None else self.lanes
        fanin = width if self.fanin is None else self.fanin
        engines = auto_engines(model.T, lanes) if self.engines is None else self.engines
        proj_lanes = lanes if self.proj_lanes is None else self.proj_lanes
        return replace(self, lanes=lanes, fanin=fanin, engines=engines, proj_lanes=proj_lanes)


@dataclass(frozen=True)
class BaselineKnobs(CoreKnobs):
    """Knobs of the MAC baseline core (:class:`~snnhw.hw.baseline_core.BaselineCore`)."""

    lanes: int | None = int_knob(None, "hidden units in parallel (must divide every layer's H)")
    fanin: int | None = int_knob(None, "synapses per lane per cycle")
    head_in_hw: bool = bool_knob("put the FC head in hardware (C logits and the class on the output stream)")
    mac_stages: int = int_knob(1, "MAC-array pipeline stages, 1..7 (2: every row's products registered before "
                                  "its adder tree and accumulator; 3: also the selected input chunk and the "
                                  "weight word before the multipliers; 4: those operands registered twice, so "
                                  "that the last copy can sit in each multiplier (ECP5); 5: the products "
                                  "twice too; 6: each row's adder-tree sum before its accumulator too; 7: the "
                                  "weight ROM's read too, in banks of 512 rows; each one more cycle per layer "
                                  "and element)", maximum=7)
    act_stages: int = int_knob(1, "activation pipeline stages per step, 1..4 (2: a register after each "
                                  "multiplier of the gate, cell and hidden steps, at most one multiplier per "
                                  "clock path; 3: another after the add or clip that follows it, a multiplier "
                                  "or a carry chain per clock path; each three more cycles per layer and "
                                  "element; 4: 3 and the hidden step's o·tc product registered before h, "
                                  "one more cycle)", maximum=4)

    def resolved(self, model: Any) -> "BaselineKnobs":
        """``lanes`` None → the largest divisor of every layer's H not above :func:`auto_width`;
        ``fanin`` None → :func:`auto_width`."""
        width = auto_width(max(layer.hidden_size for layer in model.layers))
        lanes = self.lanes
        if lanes is None:
            lanes = max(d for d in range(1, width + 1) if all(l.hidden_size % d == 0 for l in model.layers))
        return replace(self, lanes=lanes, fanin=width if self.fanin is None else self.fanin)


# ------------------------------------------------------------------------------------------ CLI

def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_knob_options(parser: argparse.ArgumentParser, specs: Iterable[Any]) -> None:
    """Add one option per knob of the given core specs (the union; a knob shared by several cores
    is one option). Defaults are None/False so that :func:`knobs_from_args` can tell an automatic
    knob; the help names the cores each knob applies to and the default rule."""
    seen: dict[str, tuple[Any, list[str]]] = {}
    for spec in specs:
        for f in fields(spec.knobs_type):
            seen.setdefault(f.name, (f, []))[1].append(spec.name)
    group = parser.add_argument_group("core knobs", "hardware parameters of the generated cores; automatic "
                                      "knobs: lanes = fanin = clamp(H/8, 1, 8) (baseline lanes: the largest "
                                      "divisor of H up to that), engines = clamp(ceil(T·lanes/8), 1, T)")
    for name, (f, cores) in seen.items():
        meta = f.metadata
        where = "/".join(cores)
        if meta["kind"] == "bool":
            group.add_argument(_flag(name), dest=name, action="store_true", default=False,
                               help=f"{meta['help']} [{where}]")
        elif meta["kind"] == "int":
            default = AUTO if f.default is None else f.default
            group.add_argument(_flag(name), dest=name, type=int, default=None, metavar="N",
                               help=f"{meta['help']} [{where}; default {default}]")
        else:
            default = "from the model" if f.default is None else f.default
            group.add_argument(_flag(name), dest=name, choices=meta["choices"], default=None,
                               help=f"{meta['help']} [{where}; default {default}]")


def knobs_from_args(args: argparse.Namespace, knobs_type: type[K]) -> K:
    """The ``knobs_type`` knobs given on the command line (absent ones take their defaults);
    a bad value raises ``ValueError`` (the CLI prints one line)."""
    given = {}
    for f in fields(knobs_type):
        value = getattr(args, f.name, None)
        if value is not None:
            given[f.name] = value
    return knobs_type(**given)

"""The core registry: one :class:`CoreSpec` per core kind; every flow iterates over it.

``generate``, ``verify``, ``build``, ``compare``, the reports and the command line know the
cores only through their specs: the spec names the frozen model type a core accepts, its knob
class (:mod:`snnhw.hw.knobs`), the factory of its Amaranth component, its pure schedule
(:mod:`snnhw.hw.schedule`) and its golden runner (:mod:`snnhw.quant.golden`).

Adding a core kind is one new module that defines the component and a ``SPEC = CoreSpec(...)``,
plus one line in :data:`CORE_MODULES` (``docs/architecture.md``, "Adding a core").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

CORE_MODULES: tuple[str, ...] = (
    "snnhw.hw.spiking_core",
    "snnhw.hw.baseline_core",
)
"""Modules that each define ``SPEC``, in the order the flows list the cores (the first is the
main core: the one the board's self-checking top runs)."""


@dataclass(frozen=True)
class PipelineCut:
    """A pipeline-depth knob of a core and the block whose paths its next stage shortens.

    Attributes:
        knob: an integer knob of the core (its ``maximum`` bounds the deepening).
        pattern: regular expression matched against the hierarchical names of the cells on a
            routed critical path (nextpnr keeps the Amaranth hierarchy, e.g.
            ``core.layer_0.engine_1.tree_1_1.sum_TRELLIS_FF_Q_1``): the cells of the block this
            knob pipelines.
    """

    knob: str
    pattern: str


@dataclass(frozen=True)
class CoreSpec:
    """Everything the flows need to know about one core kind.

    Attributes:
        name: the kind's key ("spiking", "baseline"): directory and report keys, ``--core`` values.
        label: how reports name it ("spiking wavefront core").
        top: the Verilog top module (``snn_lstm_core``).
        verilog_file: the generated file's name (``spiking_core.v``; the manifest sits beside it
            as ``<stem>.manifest.json``).
        model_type: the frozen model class it accepts (:mod:`snnhw.quant.frozen`).
        model_option: the command-line option that takes such a model (``--golden``).
        knobs_type: its :class:`~snnhw.hw.knobs.CoreKnobs` subclass.
        component: ``(model, resolved knobs) → wiring.Component`` (raises ValueError / TypeError
            on knobs the model cannot take).
        schedule: ``(model, resolved knobs) → schedule`` (pure; same errors).
        golden: ``(model, inputs, lengths, **options) → golden result`` (readout, logits, classes,
            counters, trace).
        pipeline_cuts: the core's pipeline-depth knobs and the blocks they cut
            (:class:`PipelineCut`), for timing closure (:mod:`snnhw.flow.timing_closure`).
    """

    name: str
    label: str
    top: str
    verilog_file: str
    model_type: type
    model_option: str
    knobs_type: type
    component: Callable[[Any, Any], Any]
    schedule: Callable[[Any, Any], Any]
    golden: Callable[..., Any]
    pipeline_cuts: tuple[PipelineCut, ...] = ()

    @property
    def manifest_file(self) -> str:
        """``<stem>.manifest.json`` beside the Verilog."""
        return self.verilog_file.rsplit(".", 1)[0] + ".manifest.json"

    def accepts(self, model: Any) -> bool:
        """``model`` is of the type this core is generated from."""
        return isinstance(model, self.model_type)

    def check_model(self, model: Any) -> None:
        """TypeError unless this core accepts ``model``."""
        if not self.accepts(model):
            raise TypeError(f"the {self.label} takes a {self.model_type.__name__}, not a {type(model).__name__}")

    def knobs(self, model: Any, knobs: Any = None) -> Any:
        """``knobs`` (default: all automatic) converted to this core's knob class and resolved for
        ``model``. Knobs of another core kind pass the fields the two share."""
        if knobs is None:
            knobs = self.knobs_type()
        elif not isinstance(knobs, self.knobs_type):
            from dataclasses import fields

            names = {f.name for f in fields(self.knobs_type)}
            knobs = self.knobs_type(**{k: v for k, v in knobs.to_manifest().items() if k in names})
        return knobs.resolved(model)

    def build(self, model: Any, knobs: Any = None) -> Any:
        """The Amaranth component for ``model`` with ``knobs`` (resolved)."""
        self.check_model(model)
        return self.component(model, self.knobs(model, knobs))

    def schedule_of(self, model: Any, knobs: Any = None) -> Any:
        """The pure schedule for ``model`` with ``knobs`` (resolved)."""
        self.check_model(model)
        return self.schedule(model, self.knobs(model, knobs))


_SPECS: dict[str, CoreSpec] | None = None


def core_specs() -> list[CoreSpec]:
    """Every registered core kind, in :data:`CORE_MODULES` order."""
    global _SPECS
    if _SPECS is None:
        specs: dict[str, CoreSpec] = {}
        for module in CORE_MODULES:
            spec = importlib.import_module(module).SPEC
            if spec.name in specs:
                raise RuntimeError(f"two core kinds named {spec.name!r}")
            specs[spec.name] = spec
        _SPECS = specs
    return list(_SPECS.values())


def core_names() -> list[str]:
    """The registered kinds' names."""
    return [spec.name for spec in core_specs()]


def core_spec(name: str) -> CoreSpec:
    """The spec of core kind ``name`` (ValueError naming the known kinds otherwise)."""
    for spec in core_specs():
        if spec.name == name:
            return spec
    raise ValueError(f"unknown core kind {name!r} (known: {', '.join(core_names())})")


def main_core() -> CoreSpec:
    """The main core (the first registered: the one the board's self-checking top runs)."""
    return core_specs()[0]


def spec_for_model(model: Any) -> CoreSpec:
    """The (first) core kind that takes ``model`` (TypeError when none does)."""
    for spec in core_specs():
        if spec.accepts(model):
            return spec
    raise TypeError(f"no registered core takes a {type(model).__name__}")


def specs_for_model(model: Any) -> list[CoreSpec]:
    """Every core kind that takes ``model`` (a third core may take the same model as another)."""
    return [spec for spec in core_specs() if spec.accepts(model)]


def add_core_options(parser: Any) -> None:
    """Add the knob options of every registered core kind to ``parser`` (one function for every
    subcommand that builds cores: ``generate``, ``verify``, ``build``, ``demo``)."""
    from snnhw.hw.knobs import add_knob_options

    add_knob_options(parser, core_specs())


def core_knobs_from_args(args: Any) -> dict[str, Any]:
    """The knobs of every registered core kind from parsed options (:func:`add_core_options`);
    a bad value raises ``ValueError``."""
    from snnhw.hw.knobs import knobs_from_args

    return {spec.name: knobs_from_args(args, spec.knobs_type) for spec in core_specs()}


def shared_knobs(**values: Any) -> dict[str, Any]:
    """Knobs of every registered core kind with ``values`` set where the kind has that knob
    (e.g. ``shared_knobs(lanes=2, fanin=2)``)."""
    from dataclasses import fields

    out = {}
    for spec in core_specs():
        names = {f.name for f in fields(spec.knobs_type)}
        out[spec.name] = spec.knobs_type(**{k: v for k, v in values.items() if k in names})
    return out


def check_knobs_apply(args: Any, kinds: list[str]) -> None:
    """ValueError when a knob option was given that none of the selected core kinds takes
    (e.g. ``--input-mode`` with only a MAC baseline model): nothing is silently ignored."""
    from dataclasses import fields

    takers: dict[str, list[CoreSpec]] = {}  # knob → the core kinds that have it
    for spec in core_specs():
        for f in fields(spec.knobs_type):
            takers.setdefault(f.name, []).append(spec)
    for name, specs in takers.items():
        if getattr(args, name, None) not in (None, False) and not any(s.name in kinds for s in specs):
            raise ValueError(f"--{name.replace('_', '-')} applies to the {' and the '.join(s.label for s in specs)} "
                             "only, and no such model was given")

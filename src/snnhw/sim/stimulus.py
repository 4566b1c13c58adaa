"""Stimulus/expectation files: what the cocotb testbench drives and what it must receive.

The pytest side (or ``snnhw verify``) computes every expected value with the golden model
(:mod:`snnhw.quant.golden`) and the core's published cycle formula, packs the input words
with :mod:`snnhw.hw.stream_io`, and writes one JSON file. The testbench (``sim/tb_core.py``)
reads it through the environment variable ``SNNHW_STIMULUS`` and compares the core's output
stream against it word for word; it never computes an expectation itself.

File format (``format = "snnhw-stimulus"``, ``version = 1``)::

    core            "spiking" | "baseline" | any label
    toplevel        HDL top module name
    in_payload_bits width of the flattened ``i__payload`` port (data + last)
    out_data_bits   Wo, width of the signed ``data`` field of ``o__payload`` (``last`` is the MSB)
    timeout_cycles  cycles without any transfer after which the run fails
    modes           list of runs over all sequences, each after a reset:
                    {name, idle, backpressure, check_cycles, seed, isolate}
                    idle/backpressure: "none" | "random:P" (stall with probability P per cycle)
                    | "every:K" (one stall cycle in every K)
    sequences       list of {sample, n, inputs, expected, labels, cycles, trace}
                    inputs: the N input payload words (ints, ``last`` set on the final one)
                    expected: the signed output data words; the final one carries last = 1
                    labels: a name per output word ("r[3]", "logit[1]", "class")
                    cycles: the core's cycle count for this sequence (None: not checked)
                    trace: optional golden context shown with a mismatch; spiking cores:
                    {"readout_terms": [H][T] h_L(N,t)[j], "readout_terms_name": ...}
                    trace_records: (debug cores with a ``trace`` port) the raw trace payloads
                    the core must emit for this sequence, in order (golden trace packed by
                    ``snnhw.hw.trace_io``); null otherwise
                    trace_where: [layer, n, t, group] of each trace record
    trace_fields    (debug cores) the trace record's fields, LSB first: {name, unit, lsb,
                    width, signed} (``SpikingCore.trace_fields()``); null: no trace port
    trace_payload_bits  width of ``trace__payload`` (0 without a trace port)

With ``trace_fields`` the testbench also takes the ``trace`` stream (its ready follows the
mode's backpressure pattern, with its own seed) and compares every record exactly; the first
mismatch is located as (sequence, sample, record, layer, n, t, gate, unit, expected, got).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snnhw.errors import UserError

if TYPE_CHECKING:
    from snnhw.quant.frozen import FrozenBaseline, FrozenSpiking

STIMULUS_FORMAT = "snnhw-stimulus"
STIMULUS_VERSION = 1
ENV_STIMULUS = "SNNHW_STIMULUS"
"""Environment variable naming the stimulus JSON file for the testbench."""
ENV_RESULT = "SNNHW_TB_RESULT"
"""Environment variable naming the JSON file the testbench writes its measurements to."""


def split_output_payload(raw: int, out_data_bits: int) -> tuple[int, int]:
    """(signed data, last) of a flattened ``o`` payload ``{last, data[Wo-1:0]}``.

    The testbench's decoder; ``tests/sim`` checks it against
    :func:`snnhw.hw.stream_io.unpack_output_word` for real models (same layout, no model
    needed inside the simulator).
    """
    data = raw & ((1 << out_data_bits) - 1)
    if data >> (out_data_bits - 1):
        data -= 1 << out_data_bits
    return data, (raw >> out_data_bits) & 1


def first_trace_difference(fields: list[dict[str, Any]], expected: int, got: int) -> dict[str, Any] | None:
    """The first field (LSB first) where two raw trace records differ: ``{name, unit, expected,
    got}`` (``unit`` = lane index, None for a header field), or None when they are equal."""
    from snnhw.hw.trace_io import trace_field_value

    for fld in fields:
        want, have = trace_field_value(expected, fld), trace_field_value(got, fld)
        if want != have:
            return {"name": fld["name"], "unit": fld["unit"], "expected": want, "got": have}
    return None


def describe_mismatch(m: dict[str, Any]) -> str:
    """One line locating a testbench mismatch record (the cocotb failure message and reports)."""
    where = f"mode {m['mode']}, sequence {m['sequence']}"
    if "sample" in m:
        where += f" (sample {m['sample']})"
    kind = m["kind"]
    if kind == "cycles":
        return f"{where}: cycle count expected {m['expected']} got {m['got']}"
    if kind == "timeout":
        return (f"{where}: no transfer for the timeout while waiting for output word {m['word']} "
                f"({m['label']}, expected {m['expected']}); {m['inputs_accepted']} input words accepted")
    if kind == "extra":
        return f"{where}: unexpected extra output word {m['got']} (last={m['got_last']}) after the final sequence"
    if kind == "last":
        return (f"{where}, word {m['word']} ({m['label']}): last expected {m['expected_last']} "
                f"got {m['got_last']} (data {m['got']})")
    if kind == "trace":
        unit = "" if m["unit"] is None else f"[{m['unit']}]"
        return (f"{where}, trace record {m['record']} (layer {m['layer']}, element n={m['n']}, time step "
                f"t={m['t']}): {m['gate']}{unit} expected {m['expected']} got {m['got']}")
    if kind == "trace-extra":
        return f"{where}: unexpected extra trace record {m['got']:#x}"
    if kind == "trace-missing":
        return (f"{where}: all output words received but only {m['got']} of {m['expected']} trace "
                "records before them")
    text = f"{where}, word {m['word']} ({m['label']}): expected {m['expected']} got {m['got']}"
    if m.get("trace"):
        text += f"; {m['trace']}"
    return text


@dataclass
class Mode:
    """One pass over all sequences (after a reset).

    Attributes:
        name: label in reports.
        idle: source idle inserter: "none", "random:P" or "every:K".
        backpressure: sink backpressure inserter (same forms).
        check_cycles: compare each sequence's measured cycles with its ``cycles`` (only
            meaningful without idle/backpressure, the condition the cycle formula assumes).
        seed: seed of the inserters' random generators.
        isolate: offer a sequence's first element only after the previous sequence's last
            output word was accepted (the "isolated sequence" of the cycle formulas); else
            sequences follow back to back.
    """

    name: str
    idle: str = "none"
    backpressure: str = "none"
    check_cycles: bool = True
    seed: int = 0
    isolate: bool = False


def check_inserter(spec: str) -> str:
    """Validate an idle/backpressure spec ("none", "random:P" with 0 ≤ P < 1, "every:K" with K ≥ 2)."""
    kind, _, arg = spec.partition(":")
    try:
        if kind == "none" and not arg:
            return spec
        if kind == "random" and 0.0 <= float(arg) < 1.0:
            return spec
        if kind == "every" and int(arg) >= 2:
            return spec
    except ValueError:
        pass
    raise UserError(f"bad stall pattern {spec!r}: use none, random:P (0 <= P < 1) or every:K (K >= 2)")


SLOW_SINK_STALL = 0.9
"""Stall probability per cycle of the regression's slow-sink sink (:func:`regression_modes`)."""


def default_modes(seed: int, stalls: bool = True, back_to_back: bool = False, slow_sink: float = 0.0) -> list[Mode]:
    """The standard runs over all sequences.

    1. "isolated": full rate, each sequence alone in the core, cycle counts checked exactly;
    2. "stalls" (``stalls``): back to back under random source idles (P = 0.3) and sink
       backpressure (P = 0.4), data checked;
    3. "back-to-back" (``back_to_back``): full rate, sequences back to back, data checked;
    4. "slow-sink" (``slow_sink`` = P > 0): sequences back to back at full input rate, the sink
       not ready with probability P per cycle, data checked. The output side drains slower
       than the core computes, so a result waits behind words not yet sent (in "stalls" the
       sink is ready 60 % of the cycles and an output buffer has always drained before the
       next result comes).
    """
    modes = [Mode("isolated", "none", "none", True, seed, isolate=True)]
    if stalls:
        modes.append(Mode("stalls", "random:0.3", "random:0.4", False, seed + 1))
    if back_to_back:
        modes.append(Mode("back-to-back", "none", "none", False, seed + 2))
    if slow_sink:
        modes.append(Mode("slow-sink", "none", check_inserter(f"random:{slow_sink}"), False, seed + 3))
    return modes


def regression_modes(seed: int) -> list[Mode]:
    """The modes of the cocotb regression (``tests/sim``, ``bench/mutants.py --regression-modes``):
    isolated, stalls and slow-sink with P = :data:`SLOW_SINK_STALL`."""
    return default_modes(seed, slow_sink=SLOW_SINK_STALL)


@dataclass
class SequenceCase:
    """One sequence: its input words and the expected output words.

    Attributes:
        sample: index of the sample in its source (batch position or dataset index).
        n: number of elements N (= len(inputs)).
        inputs: input payload words as unsigned ints (``data`` | ``last`` << Wi).
        expected: expected signed ``data`` of each output word, in order.
        labels: a name per output word.
        cycles: expected cycle count (None: not checked).
        trace: optional golden context for mismatch messages (see the module doc).
        trace_records: debug cores: the expected raw ``trace`` payloads, in stream order.
        trace_where: [layer, n, t, group] of each trace record.
    """

    sample: int
    n: int
    inputs: list[int]
    expected: list[int]
    labels: list[str]
    cycles: int | None = None
    trace: dict[str, Any] | None = None
    trace_records: list[int] | None = None
    trace_where: list[list[int]] | None = None


@dataclass
class Stimulus:
    """A whole testbench input: the core's geometry, run modes and sequences (see module doc)."""

    core: str
    toplevel: str
    in_payload_bits: int
    out_data_bits: int
    sequences: list[SequenceCase]
    modes: list[Mode] = field(default_factory=lambda: default_modes(0))
    timeout_cycles: int = 100_000
    meta: dict[str, Any] = field(default_factory=dict)
    trace_fields: list[dict[str, Any]] | None = None
    trace_payload_bits: int = 0

    def validate(self) -> None:
        """Raise ValueError when a field is inconsistent."""
        if not self.sequences:
            raise ValueError("a stimulus needs at least one sequence")
        for k, seq in enumerate(self.sequences):
            if seq.n != len(seq.inputs) or seq.n < 1:
                raise ValueError(f"sequence {k}: n={seq.n} but {len(seq.inputs)} input words")
            if len(seq.labels) != len(seq.expected) or not seq.expected:
                raise ValueError(f"sequence {k}: {len(seq.expected)} expected words, {len(seq.labels)} labels")
            if any(w < 0 or w >> self.in_payload_bits for w in seq.inputs):
                raise ValueError(f"sequence {k}: an input word does not fit {self.in_payload_bits} bits")
            lo, hi = -(1 << (self.out_data_bits - 1)), (1 << (self.out_data_bits - 1)) - 1
            if any(not lo <= w <= hi for w in seq.expected):
                raise ValueError(f"sequence {k}: an expected word does not fit signed {self.out_data_bits} bits")
            if self.trace_fields is not None:
                if seq.trace_records is None or seq.trace_where is None or \
                        len(seq.trace_records) != len(seq.trace_where) or not seq.trace_records:
                    raise ValueError(f"sequence {k}: a trace stimulus needs trace_records and trace_where "
                                     "of one length")
                if any(w < 0 or w >> self.trace_payload_bits for w in seq.trace_records):
                    raise ValueError(f"sequence {k}: a trace record does not fit {self.trace_payload_bits} bits")
        for mode in self.modes:
            check_inserter(mode.idle)
            check_inserter(mode.backpressure)

    def to_json(self) -> dict[str, Any]:
        """The JSON document (see module doc)."""
        return {"format": STIMULUS_FORMAT, "version": STIMULUS_VERSION, **asdict(self)}

    def save(self, path: Path) -> Path:
        """Validate and write the stimulus file; returns ``path``."""
        self.validate()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path: Path) -> "Stimulus":
        """Read a stimulus file written by :meth:`save`."""
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != STIMULUS_FORMAT or doc.get("version") != STIMULUS_VERSION:
            raise UserError(f"{path} is not an snnhw stimulus file of version {STIMULUS_VERSION}")
        return cls(
            core=doc["core"],
            toplevel=doc["toplevel"],
            in_payload_bits=doc["in_payload_bits"],
            out_data_bits=doc["out_data_bits"],
            sequences=[SequenceCase(**s) for s in doc["sequences"]],
            modes=[Mode(**m) for m in doc["modes"]],
            timeout_cycles=doc["timeout_cycles"],
            meta=doc.get("meta", {}),
            trace_fields=doc.get("trace_fields"),
            trace_payload_bits=doc.get("trace_payload_bits", 0),
        )

    def corrupted(self, sequence: int, word: int, delta: int = 1) -> "Stimulus":
        """A copy with one expected word changed by ``delta`` (wrapped into the signed range).

        Used to prove that a comparison bites: the run on the corrupted copy must fail at
        exactly (``sequence``, ``word``).
        """
        out = copy.deepcopy(self)
        bits = self.out_data_bits
        value = out.sequences[sequence].expected[word] + delta
        half = 1 << (bits - 1)
        out.sequences[sequence].expected[word] = ((value + half) % (1 << bits)) - half
        return out

    def with_flipped_trace_spike(self, sequence: int, layer: int, n: int, t: int, gate: str, unit: int) -> "Stimulus":
        """A copy with one expected trace value of cell (layer, n, t) flipped: 0 → 1, nonzero → 0.

        For a spike field (f, o, s_c, h; i or g when spiking) this flips the spike; a mutation
        check: the run must fail at exactly this (sequence, layer, n, t, gate, unit).
        """
        from snnhw.hw.trace_io import pack_trace_record, unpack_trace_record

        if self.trace_fields is None:
            raise ValueError("this stimulus has no trace expectations")
        out = copy.deepcopy(self)
        seq = out.sequences[sequence]
        lanes = 1 + max(f["unit"] for f in self.trace_fields if f["unit"] is not None)
        where = [layer, n, t, unit // lanes]
        if where not in seq.trace_where:
            raise ValueError(f"sequence {sequence} has no trace record for layer {layer}, n {n}, t {t}, unit {unit}")
        pos = seq.trace_where.index(where)
        rec = unpack_trace_record(self.trace_fields, seq.trace_records[pos])
        lane = rec["units"][unit % lanes]
        lane[gate] = 1 if lane[gate] == 0 else 0
        seq.trace_records[pos] = pack_trace_record(self.trace_fields, rec, rec["units"])
        return out

    def with_cycles_offset(self, sequence: int, delta: int) -> "Stimulus":
        """A copy whose expected cycle count of one sequence is off by ``delta`` (a mutation check)."""
        out = copy.deepcopy(self)
        cyc = out.sequences[sequence].cycles
        if cyc is None:
            raise ValueError(f"sequence {sequence} has no expected cycle count")
        out.sequences[sequence].cycles = cyc + delta
        return out


def output_labels(hidden: int, classes: int, head_in_hw: bool) -> list[str]:
    """Names of a sequence's output words: r[0..H-1], then logit[0..C-1] and class with the head."""
    labels = [f"r[{j}]" for j in range(hidden)]
    if head_in_hw:
        labels += [f"logit[{c}]" for c in range(classes)] + ["class"]
    return labels


def build_stimulus(
    model: "FrozenSpiking | FrozenBaseline",
    schedule: Any,
    inputs: np.ndarray,
    lengths: np.ndarray,
    *,
    input_mode: str | None = None,
    head_in_hw: bool | None = None,
    modes: list[Mode] | None = None,
    sample_ids: list[int] | None = None,
    timeout_cycles: int | None = None,
) -> Stimulus:
    """The stimulus of a batch: input words, the golden model's output words, the core's cycles.

    Args:
        model: the frozen model the core was generated from.
        schedule: the configuration's schedule (:mod:`snnhw.hw.schedule`): its ``input_mode``
            and ``head_in_hw`` fix the stream format, its ``sequence_cycles`` (from the golden
            model's input spikes u and h spikes when the schedule depends on them) gives the
            expected cycles, and with ``has_trace`` its ``trace_order`` the trace records.
        inputs: int64 ``[B, N, D]`` quantized inputs x_q (direct / rate), or ``[B, N, T, D]``
            spikes for input mode "spikes".
        lengths: int64 ``[B]`` elements per sample (1..N).
        input_mode, head_in_hw: optional; when given they must equal the schedule's (ValueError).
        modes: run modes (default :func:`default_modes` with seed 0).
        sample_ids: the samples' indices in their source (default 0..B−1).
        timeout_cycles: no-transfer cycles that count as a hang (default: 4 × the longest
            expected sequence, at least 1000).
    """
    from snnhw.hw import stream_io
    from snnhw.hw.trace_io import expected_trace_records
    from snnhw.hw.trace_io import trace_fields as layer_trace_fields
    from snnhw.quant import golden
    from snnhw.quant.frozen import FrozenSpiking

    from snnhw.hw.registry import spec_for_model

    spec = spec_for_model(model)
    mode = stream_io.check_input_mode(model, schedule.input_mode)
    if input_mode is not None and stream_io.check_input_mode(model, input_mode) != mode:
        raise ValueError(f"input mode {input_mode!r} differs from the core's {mode!r}")
    if head_in_hw is not None and bool(head_in_hw) != bool(schedule.head_in_hw):
        raise ValueError(f"head_in_hw={head_in_hw} differs from the core's {schedule.head_in_hw}")
    head_in_hw = bool(schedule.head_in_hw)
    inputs = np.asarray(inputs, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    event = bool(schedule.event_driven)
    u = None
    if isinstance(model, FrozenSpiking):
        # the trace gives the event-driven schedule and the per-t terms of each readout word
        if mode == "spikes":
            res = spec.golden(model, None, lengths, spikes_in=inputs, trace=True)
            u = inputs
        else:
            res = spec.golden(model, inputs, lengths, trace=True)
            u = golden.rate_encode(model, inputs) if (event and mode == "rate") else None
    else:
        res = spec.golden(model, inputs, lengths)
    hidden, classes = model.hidden_size, model.num_classes
    labels = output_labels(hidden, classes, head_in_hw)
    # debug cores: every trace record from the golden trace (snnhw.hw.trace_io packs them)
    trace_fields = layer_trace_fields(model, schedule.lanes) if schedule.has_trace else None
    seqs = []
    for b in range(inputs.shape[0]):
        n = int(lengths[b])
        words = [stream_io.pack_input_word(model, mode, inputs[b, k], last=(k == n - 1)) for k in range(n)]
        expected = [int(v) for v in res.readout[b]]
        if head_in_hw:
            expected += [int(v) for v in res.logits[b]] + [int(res.classes[b])]
        trace_records = trace_where = None
        if trace_fields is not None:
            order = schedule.trace_order(n)
            trace_records = expected_trace_records(trace_fields, order, res.trace, b)
            trace_where = [list(o) for o in order]
        # an event-driven schedule depends on the spikes: the golden trace gives them
        cycles = int(schedule.sequence_cycles(n, None if u is None else u[b, :n],
                                              [layer["h"][b, :n] for layer in res.trace] if event else None))
        trace = None
        if res.trace is not None:
            # r[j] = Σ_t h_L(N, t)[j]: the golden terms, shown beside a mismatching readout word
            terms = res.trace[-1]["h"][b, n - 1]  # [T, H]
            trace = {"readout_terms": terms.T.tolist(), "readout_terms_name": "h_L(N,t)[j], t=1..T"}
        seqs.append(SequenceCase(sample=int(sample_ids[b]) if sample_ids is not None else b, n=n,
                                 inputs=words, expected=expected, labels=list(labels), cycles=cycles, trace=trace,
                                 trace_records=trace_records, trace_where=trace_where))
    longest = max(s.cycles or 0 for s in seqs)
    return Stimulus(
        core=spec.name,
        toplevel=spec.top,
        in_payload_bits=stream_io.input_data_width(model, mode) + 1,
        out_data_bits=stream_io.output_word_width(model, head_in_hw),
        sequences=seqs,
        modes=modes if modes is not None else default_modes(0),
        timeout_cycles=timeout_cycles if timeout_cycles is not None else max(1000, 4 * longest),
        meta={"input_mode": mode, "head_in_hw": head_in_hw, "hidden": hidden, "classes": classes,
              "T": getattr(model, "T", None), "layers": len(model.layers)},
        trace_fields=trace_fields,
        trace_payload_bits=sum(f["width"] for f in trace_fields) if trace_fields is not None else 0,
    )

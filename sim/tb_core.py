"""cocotb testbench for the generated cores (spiking ``snn_lstm_core``, MAC ``mac_lstm_core``).

Everything this testbench checks comes from a stimulus file written by the Python side
(:mod:`snnhw.sim.stimulus`, path in ``$SNNHW_STIMULUS``): the input payload words, the golden
model's output words and the core's published cycle count per sequence. The testbench never
computes an expected value; it drives, observes and compares.

Ports (docs/hw-interface.md): ``clk``, ``rst`` (synchronous, active high), input stream
``i__payload`` / ``i__valid`` / ``i__ready`` and output stream ``o__payload`` / ``o__valid`` /
``o__ready``; ``o__payload`` = {last, data[Wo−1:0]} with ``data`` signed. A debug spiking core
(``trace=True``) also has the stream ``trace__payload`` / ``trace__valid`` / ``trace__ready``:
when the stimulus carries ``trace_fields``, a second sink (its own backpressure, same pattern)
takes it and every record is compared with the stimulus's ``trace_records`` (the golden
trace); a mismatch is located as (sequence, sample, record, layer, n, t, gate, unit).

Timing discipline (one loop, two triggers per clock): at each falling edge the drivers update
``valid``/``payload``/``ready``; at the following ``ReadOnly`` phase the handshakes are sampled
(inputs only change at falling edges, so what is seen there is what the next rising edge
registers). A word moves at rising edge ``c`` when ``valid & ready`` was sampled before it.

Cycle count (docs/hw-interface.md): from the rising edge that accepts a sequence's first input
element to the rising edge that accepts its last output word, inclusive, at full rate.

Measurements go to ``$SNNHW_TB_RESULT`` (JSON); the cocotb test fails with the first mismatch
located: mode, sequence (and sample), output word index and its label, expected vs got.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from snnhw.sim.stimulus import (
    ENV_RESULT,
    ENV_STIMULUS,
    Mode,
    Stimulus,
    describe_mismatch,
    first_trace_difference,
    split_output_payload,
)

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 2
DRAIN_CYCLES = 16
"""Cycles the sink stays ready after the last expected word, to catch extra output words."""


def stall_pattern(spec: str, seed: int) -> Iterator[bool]:
    """Endless booleans, True = stall this cycle: "none", "random:P" (Bernoulli P) or "every:K"."""
    kind, _, arg = spec.partition(":")
    rng = random.Random(seed)
    k = 0
    while True:
        if kind == "none":
            yield False
        elif kind == "random":
            yield rng.random() < float(arg)
        elif kind == "every":
            k += 1
            yield k % int(arg) == 0
        else:
            raise ValueError(f"unknown stall pattern {spec!r}")


class StreamSource:
    """Drives a valid/ready stream (``<prefix>__payload/valid/ready``) from a word queue.

    The idle inserter only acts between words: once ``valid`` is raised with a word, it stays
    raised with the same payload until the word is accepted (no withdrawn offers).
    """

    def __init__(self, dut: Any, prefix: str, idle: Iterator[bool]) -> None:
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.idle = idle
        self.queue: deque[int] = deque()
        self.offer: int | None = None
        self.accepted = 0

    def drive(self) -> None:
        """Falling edge: present the next word unless idling (or keep the pending offer)."""
        if self.offer is None and self.queue and not next(self.idle):
            self.offer = self.queue.popleft()
            self.payload.value = self.offer
        self.valid.value = int(self.offer is not None)

    def sample(self) -> int | None:
        """ReadOnly: the word the coming rising edge transfers, or None.

        An undefined (X/Z) ``ready`` while a word is offered raises AssertionError.
        """
        if self.offer is None:
            return None
        ready = self.ready.value
        if not ready.is_resolvable:
            raise AssertionError(f"{self.ready._name} is undefined ({ready}) while a word is offered")
        if int(ready) == 1:
            word, self.offer = self.offer, None
            self.accepted += 1
            return word
        return None

    def idle_all(self) -> None:
        """Withdraw everything (used only around resets)."""
        self.queue.clear()
        self.offer = None
        self.valid.value = 0


class StreamSink:
    """Receives a valid/ready stream; the backpressure inserter lowers ``ready`` on stall cycles."""

    def __init__(self, dut: Any, prefix: str, backpressure: Iterator[bool]) -> None:
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.backpressure = backpressure
        self.is_ready = False

    def drive(self) -> None:
        """Falling edge: choose ``ready`` for the coming edge."""
        self.is_ready = not next(self.backpressure)
        self.ready.value = int(self.is_ready)

    def sample(self) -> int | None:
        """ReadOnly: the raw payload the coming rising edge transfers, or None.

        An undefined (X/Z) ``valid`` while ready, or an undefined payload on a transfer,
        raises AssertionError.
        """
        if not self.is_ready:
            return None
        valid = self.valid.value
        if not valid.is_resolvable:
            raise AssertionError(f"{self.valid._name} is undefined ({valid}) while ready")
        if int(valid) != 1:
            return None
        payload = self.payload.value
        if not payload.is_resolvable:
            raise AssertionError(f"{self.payload._name} is undefined on a transfer: {payload}")
        return payload.to_unsigned()


class TraceChecker:
    """Compares the ``trace`` stream record by record with the stimulus's golden trace records.

    Records arrive strictly sequence by sequence (a sequence's trace ends before its first
    output word), so the checker keeps its own position (``seq``, ``pos``).
    """

    def __init__(self, stim: Stimulus, mode: str) -> None:
        self.stim = stim
        self.mode = mode
        self.seq = 0
        self.pos = 0
        self.received = 0
        self.bad: set[int] = set()
        self.lanes = 1 + max(f["unit"] for f in stim.trace_fields if f["unit"] is not None)

    def take(self, raw: int, cycle: int) -> dict[str, Any] | None:
        """One received record; returns a located mismatch record, or None when it matches."""
        stim = self.stim
        self.received += 1
        if self.seq >= len(stim.sequences):
            return {"mode": self.mode, "kind": "trace-extra", "sequence": self.seq, "got": raw, "cycle": cycle}
        seq = stim.sequences[self.seq]
        want = seq.trace_records[self.pos]
        mismatch = None
        if raw != want:
            self.bad.add(self.seq)
            diff = first_trace_difference(stim.trace_fields, want, raw)
            layer, n, t, group = seq.trace_where[self.pos]
            unit = None if diff["unit"] is None else group * self.lanes + diff["unit"]
            mismatch = {"mode": self.mode, "kind": "trace", "sequence": self.seq, "sample": seq.sample,
                        "record": self.pos, "layer": layer, "n": n, "t": t, "group": group, "gate": diff["name"],
                        "unit": unit, "expected": diff["expected"], "got": diff["got"], "cycle": cycle}
        self.pos += 1
        if self.pos == len(seq.trace_records):
            self.seq, self.pos = self.seq + 1, 0
        return mismatch

    def complete(self, sequence: int) -> bool:
        """True when every trace record of ``sequence`` has been received."""
        return self.seq > sequence


class TB:
    """Clock, reset, one stream source on ``i`` and one sink on ``o`` (and ``trace``) of the core under test."""

    def __init__(self, dut: Any, stim: Stimulus) -> None:
        self.dut = dut
        self.stim = stim
        self.cycle = 0
        self.source = StreamSource(dut, "i", stall_pattern("none", 0))
        self.sink = StreamSink(dut, "o", stall_pattern("none", 0))
        self.trace_sink: StreamSink | None = None
        self.trace_word: int | None = None  # the trace record the coming rising edge transfers
        Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()

    async def tick(self) -> tuple[int | None, int | None]:
        """Advance one clock: drive at the falling edge, sample at ReadOnly.

        Returns the (input word, raw output payload) that the next rising edge transfers;
        ``self.cycle`` is that edge's index; the trace record it transfers (or None) is left
        in ``self.trace_word``.
        """
        await FallingEdge(self.dut.clk)
        self.source.drive()
        self.sink.drive()
        if self.trace_sink is not None:
            self.trace_sink.drive()
        await ReadOnly()
        self.cycle += 1
        self.trace_word = self.trace_sink.sample() if self.trace_sink is not None else None
        return self.source.sample(), self.sink.sample()

    async def reset(self) -> None:
        """Synchronous reset: ``rst`` high for RESET_CYCLES edges with both streams idle."""
        await FallingEdge(self.dut.clk)
        self.source.idle_all()
        self.dut.o__ready.value = 0
        if self.trace_sink is not None:
            self.dut.trace__ready.value = 0
        self.dut.rst.value = 1
        for _ in range(RESET_CYCLES):
            await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def run_mode(self, mode: Mode) -> dict[str, Any]:
        """Send every sequence (back to back, or isolated) under ``mode``; compare every output word.

        Returns the mode's measurements: per sequence the measured cycles and status, the
        first mismatch (or None), the cycles simulated and the wall time.
        """
        stim = self.stim
        self.source = StreamSource(self.dut, "i", stall_pattern(mode.idle, mode.seed))
        self.sink = StreamSink(self.dut, "o", stall_pattern(mode.backpressure, mode.seed ^ 0x5EED))
        checker = None
        if stim.trace_fields is not None:
            self.trace_sink = StreamSink(self.dut, "trace", stall_pattern(mode.backpressure, mode.seed ^ 0x7ACE))
            checker = TraceChecker(stim, mode.name)
        await self.reset()
        fed = 1 if mode.isolate else len(stim.sequences)  # sequences handed to the source so far
        for seq in stim.sequences[:fed]:
            self.source.queue.extend(seq.inputs)
        t_wall = time.perf_counter()
        start_cycle = self.cycle
        # in_seq/in_pos: next input element to be accepted; out_seq/out_pos: next output word
        # expected; first_in[k]: edge that accepted sequence k's first element.
        in_seq, in_pos = 0, 0
        out_seq, out_pos = 0, 0
        first_in: dict[int, int] = {}
        got: list[list[int]] = [[] for _ in stim.sequences]
        records: list[dict[str, Any]] = []
        first: dict[str, Any] | None = None
        idle_cycles = 0
        drained = 0
        while out_seq < len(stim.sequences) or drained < DRAIN_CYCLES:
            word_in, raw_out = await self.tick()
            raw_trace = self.trace_word
            moved = word_in is not None or raw_out is not None or raw_trace is not None
            idle_cycles = 0 if moved else idle_cycles + 1
            if raw_trace is not None:
                mismatch = checker.take(raw_trace, self.cycle)
                if first is None and mismatch is not None:
                    first = mismatch
            if word_in is not None:
                if in_pos == 0:
                    first_in[in_seq] = self.cycle
                in_pos += 1
                if in_pos == stim.sequences[in_seq].n:
                    in_seq, in_pos = in_seq + 1, 0
            if out_seq >= len(stim.sequences):
                drained += 1
                if raw_out is not None and first is None:
                    data, last = split_output_payload(raw_out, stim.out_data_bits)
                    first = {"mode": mode.name, "kind": "extra", "sequence": out_seq, "word": None,
                             "label": None, "expected": None, "got": data, "got_last": last, "cycle": self.cycle}
                continue
            if raw_out is not None:
                seq = stim.sequences[out_seq]
                data, last = split_output_payload(raw_out, stim.out_data_bits)
                got[out_seq].append(data)
                want_last = int(out_pos == len(seq.expected) - 1)
                if first is None and (data != seq.expected[out_pos] or last != want_last):
                    first = {"mode": mode.name, "kind": "data" if data != seq.expected[out_pos] else "last",
                             "sequence": out_seq, "sample": seq.sample, "word": out_pos,
                             "label": seq.labels[out_pos], "expected": seq.expected[out_pos], "got": data,
                             "expected_last": want_last, "got_last": last, "cycle": self.cycle}
                    terms = (seq.trace or {}).get("readout_terms")
                    if terms is not None and out_pos < len(terms):
                        first["trace"] = f"golden {seq.trace['readout_terms_name']} = {terms[out_pos]}"
                out_pos += 1
                if out_pos == len(seq.expected) or last:
                    measured = self.cycle - first_in[out_seq] + 1 if out_seq in first_in else None
                    status = "ok" if got[out_seq] == seq.expected and out_pos == len(seq.expected) else "mismatch"
                    if checker is not None:
                        if status == "ok" and out_seq in checker.bad:
                            status = "trace"
                        if not checker.complete(out_seq):
                            status = "trace-missing"
                            if first is None:
                                received = checker.pos if checker.seq == out_seq else 0
                                first = {"mode": mode.name, "kind": "trace-missing", "sequence": out_seq,
                                         "sample": seq.sample, "expected": len(seq.trace_records),
                                         "got": received, "cycle": self.cycle}
                    if mode.check_cycles and seq.cycles is not None and measured != seq.cycles:
                        if status == "ok":
                            status = "cycles"
                        if first is None:
                            first = {"mode": mode.name, "kind": "cycles", "sequence": out_seq, "sample": seq.sample,
                                     "word": None, "label": "cycles", "expected": seq.cycles, "got": measured,
                                     "cycle": self.cycle}
                    records.append({"sequence": out_seq, "sample": seq.sample, "n": seq.n,
                                    "cycles_expected": seq.cycles, "cycles_measured": measured, "status": status})
                    out_seq, out_pos = out_seq + 1, 0
                    if mode.isolate and fed < len(stim.sequences):
                        self.source.queue.extend(stim.sequences[fed].inputs)
                        fed += 1
            if idle_cycles >= stim.timeout_cycles:
                seq = stim.sequences[out_seq]
                first = first or {"mode": mode.name, "kind": "timeout", "sequence": out_seq, "sample": seq.sample,
                                  "word": out_pos, "label": seq.labels[out_pos], "expected": seq.expected[out_pos],
                                  "got": None, "cycle": self.cycle,
                                  "inputs_accepted": self.source.accepted}
                records.append({"sequence": out_seq, "sample": seq.sample, "n": seq.n,
                                "cycles_expected": seq.cycles, "cycles_measured": None, "status": "timeout"})
                break
        return {"name": mode.name, "idle": mode.idle, "backpressure": mode.backpressure,
                "check_cycles": mode.check_cycles, "seed": mode.seed, "isolate": mode.isolate, "sequences": records,
                "first_mismatch": first, "sim_cycles": self.cycle - start_cycle,
                "trace_records": checker.received if checker is not None else None,
                "wall_s": time.perf_counter() - t_wall}


@cocotb.test()
async def run_stimulus(dut: Any) -> None:
    """Drive the stimulus file's sequences in every mode; fail on the first mismatch."""
    stim = Stimulus.load(Path(os.environ[ENV_STIMULUS]))
    tb = TB(dut, stim)
    results = []
    for mode in stim.modes:
        res = await tb.run_mode(mode)
        results.append(res)
        dut._log.info("mode %s: %d sequences, %d cycles, %.2f s wall", mode.name, len(res["sequences"]),
                      res["sim_cycles"], res["wall_s"])
        if res["first_mismatch"] is not None:
            break
    first = next((r["first_mismatch"] for r in results if r["first_mismatch"] is not None), None)
    out = os.environ.get(ENV_RESULT)
    if out:
        Path(out).write_text(json.dumps({"passed": first is None, "modes": results,
                                         "first_mismatch": first}, indent=1))
    assert first is None, describe_mismatch(first)

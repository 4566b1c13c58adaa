"""The MAC baseline core: the non-spiking hard LSTM of ``docs/integer-contract.md`` §4.

One engine, sequential over the elements n (element n starts when h(n−1) of every layer is
complete). Per cycle a :class:`~snnhw.hw.mac_array.MacArray` of ``4·lanes`` rows (the four gates
of ``lanes`` hidden units) takes ``fanin`` synapses per row; an activation pipeline of three
stages turns each finished group of ``lanes`` units into f, i, g, o, then c, then h, while the
MAC array already works on the next group (a stage is ``act_stages`` = 1..3 cycles; 4: C one more).
See ``docs/hw-baseline-core.md``.

Schedule of layer l (hidden size H_l, input size D_l) for one element:

* ``G_l = H_l / lanes`` groups; each group takes ``Kx_l = ceil(D_l / fanin)`` input chunks, then
  ``Kh_l = ceil(H_l / fanin)`` recurrent chunks: ``K_l = G_l·(Kx_l + Kh_l)`` MAC cycles.
* After the input chunks of a group the accumulator is rebased in the same step to
  ``(acc >> x_shift[a]) + b`` (layer 1's floor shift of the direct projection, exact to golden).
* Weights: one ROM word of ``4·lanes·fanin`` weights per MAC cycle (depth Σ K_l); biases one
  word of ``4·lanes`` per group.
* Stage A (gates, constant-coefficient multiplies), stage B (cell c: f·c + i·g), stage C
  (tanh(c), h = o·tc, and, after the last group, the commit h(n−1) ← h(n)).
* Pipeline depth (knobs): ``mac_stages`` = 2 registers the MAC array's products before its adder
  trees (a step's sum, its rebase init and its bias word one cycle later), ``mac_stages`` = 3 also
  its operands (the selected chunk and the weight word) before the multipliers (another cycle
  later; the chunk is still selected in the step stage, after the commit), ``mac_stages`` = 4
  those operands twice (the second copy, per multiplier, can move into an ECP5 multiplier's
  input register: ``snnhw.flow.ecp5_dsp``) and the bias enters a group's accumulator at its
  first step, as b·2^x_shift, instead of at the rebase; ``mac_stages`` = 5 also the products
  twice (the first copy in the ECP5 multiplier's output register, the second by the adder
  tree); ``mac_stages`` = 6 also each row's adder-tree sum before its accumulator, so that the
  accumulator's carry chain adds two operands (the step's sum and acc or its init) and its
  ``accumulate`` / ``t_first`` selection is one LUT level in front of it; ``mac_stages`` = 7
  also the weight ROM's read, in banks of :data:`WEIGHT_ROM_BANK_DEPTH` rows with a register
  each (no block RAM cascaded in depth behind a multiplexer in the read's cycle; the chunk,
  ``en`` and ``accumulate`` wait a cycle for it); ``act_stages`` = 2
  splits each activation stage after its multipliers: A1 (z·M) >> S | A2 clip; B1 f·c(n−1), i·g |
  B2 add, shift, saturate; C1 c·Mc, shift, clip (tc) | C2 o·tc, shift (h); ``act_stages`` = 3
  also splits the carry chains after them, so that no cycle holds a multiplier and an add or
  compare: A1 (z·M) >> S | A2 clip | A3 + Q/2; B1 f·c(n−1), i·g | B2 add | B3 shift, saturate;
  C1 (c·Mc) >> S | C2 clip (tc) | C3 o·tc, shift (h); ``act_stages`` = 4 also registers the o·tc
  product before h (C3 o·tc | C4 shift, h), so that it can sit in an ECP5 multiplier's output
  register, and makes the clips of A2 and C2 multiplexers: their comparisons run on the
  multiplier's operand in A1 and C1 (:func:`clip_thresholds`), and the multiplier takes only the
  operand's low bits that hold the values the clip passes (an H = 128 accumulator of 19 bits
  needs two MULT18X18D and an adder; its passed values fit 14 bits).

Cycle count (``docs/hw-interface.md``; computed by :class:`~snnhw.hw.schedule.BaselineSchedule`):
with V = 3 + (mac_stages − 1) + A − 3 and E = Σ_l (K_l + V), A = 3·act_stages activation cycles
(10 with act_stages = 4),

    cycles(N) = N·(1 + E) + 2 + W  (+ head_steps + 3 with the head in hardware)

W = words per sequence (H, or H + C + 1 with the head). Derivation: element n is accepted in
cycle a_n and its first MAC step issues in a_n + 1; layer l occupies K_l + V cycles (K_l issue
cycles, the last sum arriving mac_stages cycles after its issue, then the A
activation cycles) and the next layer starts in the last of them, the commit cycle (its first
operands are read a cycle later), so the last layer's commit falls in a_n + 1 + E, the cycle
in which the next element is accepted: a_(n+1) = a_n + 1 + E. After the last element the readout
is handed to the serializer in a_N + 2 + E (to the head instead, which answers head_steps + 3
cycles later) and the W words move in the W following cycles:
cycles = (a_N + 2 + E + W) − a_1 + 1 = N·(1 + E) + 2 + W. The formula assumes the output path
is free when the readout is ready (an isolated sequence, or back-to-back sequences whose
compute time N·(1 + E) covers the previous sequence's output words and head latency); stalls
delay but never change data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from snnhw.hw.fc_head import FCHead
from snnhw.hw.knobs import BaselineKnobs
from snnhw.hw.leak_unit import delayed
from snnhw.hw.mac_array import MacArray
from snnhw.hw.memories import PackedRom, ram_attrs, values_width
from snnhw.hw.stream_io import (
    OutputSerializer,
    input_lanes,
    input_signature,
    output_signature,
    output_word_width,
    readout_range,
)
from snnhw.hw.registry import CoreSpec, PipelineCut
from snnhw.hw.schedule import BaselineSchedule
from snnhw.hw.sequencer import ChunkSequencer
from snnhw.quant import golden
from snnhw.quant.arith import signed_bits
from snnhw.quant.frozen import FrozenBaseline

GATES = ("f", "i", "g", "o")

WEIGHT_ROM_BANK_DEPTH = 512
"""Rows per weight-ROM bank at ``mac_stages`` = 7: an ECP5 DP16KD's deepest 36-bit mode (512 ×
36; a 7-series RAMB36 holds 512 × 72), so that a bank's block RAMs are cascaded in width only."""


def _clip(value: Value, lo: int, hi: int) -> Value:
    return Mux(value < lo, lo, Mux(value > hi, hi, value))


def clip_thresholds(m_pos: int, m_neg: int, shift: int, lo: int, hi: int) -> tuple[int, int] | None:
    """``(x_hi, x_lo)`` such that ``(x·M(x)) >> shift > hi`` ⟺ ``x ≥ x_hi`` and ``(x·M(x)) >> shift
    < lo`` ⟺ ``x ≤ x_lo`` for every integer x, with ``M(x) = m_pos`` for x ≥ 0, ``m_neg`` below
    (``>>`` the floor shift); None unless ``m_pos, m_neg > 0`` and ``lo ≤ 0 ≤ hi``.

    ``floor(y) > hi`` ⟺ ``y ≥ hi + 1`` and ``floor(y) < lo`` ⟺ ``y < lo`` (lo an integer), and x·M is
    increasing in x on each side of 0 and of the sign of x: so x_hi = ⌈(hi + 1)·2^shift / m_pos⌉ ≥ 1
    and x_lo = ⌈lo·2^shift / m_neg⌉ − 1 ≤ −1. With these, the comparisons of a clip after a
    multiplier run on its operand, in the multiplier's cycle (``act_stages`` = 4).
    """
    if m_pos <= 0 or m_neg <= 0 or lo > 0 or hi < 0:
        return None
    x_hi = -(-((hi + 1) * (1 << shift)) // m_pos)
    x_lo = -((-lo * (1 << shift)) // m_neg) - 1
    return x_hi, x_lo


def _coefficient(values: list[int]) -> Value:
    """A per-layer constant: a plain constant when every layer shares it."""
    if len(set(values)) == 1:
        return Const(values[0], signed(signed_bits(min(values[0], 0), max(values[0], 0))))
    return Array(Const(v, signed(signed_bits(min(min(values), 0), max(max(values), 0)))) for v in values)


class BaselineCore(wiring.Component):
    """MAC baseline LSTM core (direct input only), exact to ``golden.run_baseline``.

    Args:
        model: the frozen baseline (1 or 2 layers).
        lanes: hidden units computed in parallel (must divide every layer's H).
        fanin: synapses per MAC row per cycle (1..max(D, H)).
        head_in_hw: also compute the FC head (logits and class words on ``o``).
        mac_stages: 1..7 cycles from a MAC step's operands to its sum (2: the products
            registered before the adder trees, :class:`~snnhw.hw.mac_array.MacArray`; 3: the
            operands too, before the multipliers; 4: the operands twice; 5: the products twice;
            6: the adder trees' sums too, before the accumulators; 7: the weight ROM's read too,
            by banks).
        act_stages: 1..3 cycles per activation stage A, B, C (2: a register after each
            multiplier; 3: another after the add or clip that follows it, see :meth:`elaborate`);
            4: 3, and C's o·tc product registered before h (C4).

    Ports (``docs/hw-interface.md``):
        i: ``In(stream.Signature(StructLayout({"data": unsigned(D·input_bits), "last": 1})))``.
        o: ``Out(stream.Signature(StructLayout({"data": signed(Wo), "last": 1})))``.

    Multipliers: MAC array ``4·lanes·fanin``; activation coefficients ``5·lanes`` (z·M for f,
    i, g, o and c·M_c; a per-layer constant with one layer); cell/hidden products ``3·lanes``
    (f·c, i·g, o·tc); the head 1 when in hardware.
    """

    def __init__(self, model: FrozenBaseline, *, lanes: int, fanin: int, head_in_hw: bool = False,
                 mac_stages: int = 1, act_stages: int = 1) -> None:
        # every check of the knobs against the model (ValueError / TypeError) is the schedule's
        knobs = BaselineKnobs(lanes=lanes, fanin=fanin, head_in_hw=bool(head_in_hw), mac_stages=mac_stages,
                              act_stages=act_stages)
        schedule = BaselineSchedule.from_model(model, knobs)
        self.model = model
        self.lanes, self.fanin, self.head_in_hw = lanes, fanin, bool(head_in_hw)
        self.mac_stages, self.act_stages = mac_stages, act_stages
        q_one = 1 << model.frac_bits
        self.h_bits = signed_bits(-q_one, q_one)
        self.x_bits = max(model.input_bits, self.h_bits)
        self.weight_bits = max(values_width(np.concatenate([layer.w_x.ravel(), layer.w_h.ravel()]))
                               for layer in model.layers)
        self.acc_bits = max(self._layer_acc_bits(index) for index in range(len(model.layers)))
        self.schedule = schedule
        """The core's cycle model (:class:`~snnhw.hw.schedule.BaselineSchedule`)."""
        self.n_words = self.schedule.out_words
        self.word_bits = output_word_width(model, self.head_in_hw)
        super().__init__({"i": In(input_signature(model, "direct")),
                          "o": Out(output_signature(model, self.head_in_hw))})

    # ------------------------------------------------------------------------------------------
    # geometry and published figures

    def _layer_acc_bits(self, index: int) -> int:
        layer = self.model.layers[index]
        x_max = (1 << (self.model.input_bits - 1)) if index == 0 else (1 << self.model.frac_bits)
        h_max = 1 << self.model.frac_bits
        wx = np.abs(np.asarray(layer.w_x, np.int64)).sum(axis=1) * x_max
        wh = np.abs(np.asarray(layer.w_h, np.int64)).sum(axis=1) * h_max
        bias = np.abs(np.asarray(layer.bias, np.int64))
        total = wx + bias + wh
        if self.mac_stages >= 4:  # the input chunks start from b·2^x_shift (see elaborate)
            shift = np.repeat(np.asarray(layer.x_shift if index == 0 else (0,) * 4, np.int64), layer.hidden_size)
            wx = wx + (bias << shift)
        bound = int(max(wx.max(), total.max()))
        return max(signed_bits(-bound, bound), self.weight_bits + self.x_bits)

    def layer_chunks(self, index: int) -> tuple[int, int, int]:
        """(G, Kx, Kh) of layer ``index``: groups, input chunks and recurrent chunks per group
        (from :attr:`schedule`)."""
        layer = self.schedule.layers[index]
        return layer.groups, layer.input_chunks, layer.recurrent_chunks

    def multipliers(self) -> dict[str, int]:
        """Multipliers by part (see the class docstring)."""
        parts = {
            "mac_array": 4 * self.lanes * self.fanin,
            "activation_coefficient": 5 * self.lanes,
            "cell_and_hidden": 3 * self.lanes,
        }
        if self.head_in_hw:
            parts["fc_head"] = 1
        return parts

    def weight_rom(self) -> np.ndarray:
        """Weight ROM contents [Σ K_l, 4·lanes·fanin]: row = MAC step, gate-major rows × fanin."""
        words = []
        for index, layer in enumerate(self.model.layers):
            groups, kx, kh = self.layer_chunks(index)
            hidden, d_in = layer.hidden_size, layer.input_size
            wx = np.zeros((4 * hidden, kx * self.fanin), np.int64)
            wx[:, :d_in] = layer.w_x
            wh = np.zeros((4 * hidden, kh * self.fanin), np.int64)
            wh[:, :hidden] = layer.w_h
            w = np.concatenate([wx, wh], axis=1)  # [4H, (kx + kh)·fanin]
            for g in range(groups):
                rows = [a * hidden + g * self.lanes + j for a in range(4) for j in range(self.lanes)]
                block = w[rows]  # [4·lanes, (kx + kh)·fanin]
                for k in range(kx + kh):
                    words.append(block[:, k * self.fanin:(k + 1) * self.fanin].reshape(-1))
        return np.stack(words)

    def bias_rom(self) -> np.ndarray:
        """Bias ROM contents [Σ G_l, 4·lanes]: one word per group, gate-major."""
        words = []
        for index, layer in enumerate(self.model.layers):
            hidden = layer.hidden_size
            for g in range(self.layer_chunks(index)[0]):
                words.append([int(layer.bias[a * hidden + g * self.lanes + j])
                              for a in range(4) for j in range(self.lanes)])
        return np.asarray(words, dtype=np.int64)

    def describe(self) -> dict[str, Any]:
        """Ports, widths, knobs, the cycle formula and the multiplier use (JSON-able)."""
        din = self.model.input_size * self.model.input_bits
        rom_w, rom_b = self.weight_rom(), self.bias_rom()
        return {
            "core": "mac_lstm_core",
            "ports": [
                {"name": "clk", "direction": "in", "width": 1},
                {"name": "rst", "direction": "in", "width": 1},
                {"name": "i__payload", "direction": "in", "width": din + 1, "fields": {"data": din, "last": 1}},
                {"name": "i__valid", "direction": "in", "width": 1},
                {"name": "i__ready", "direction": "out", "width": 1},
                {"name": "o__payload", "direction": "out", "width": self.word_bits + 1,
                 "fields": {"data": self.word_bits, "last": 1}},
                {"name": "o__valid", "direction": "out", "width": 1},
                {"name": "o__ready", "direction": "in", "width": 1},
            ],
            "knobs": {"lanes": self.lanes, "fanin": self.fanin, "head_in_hw": self.head_in_hw,
                      "mac_stages": self.mac_stages, "act_stages": self.act_stages,
                      "input_mode": "direct", "engines": 1},
            "dims": {"D": self.model.input_size, "H": [l.hidden_size for l in self.model.layers],
                     "layers": len(self.model.layers), "C": self.model.num_classes},
            "widths": {"input_lane": self.model.input_bits, "weight": self.weight_bits, "activation": self.h_bits,
                       "mac_input": self.x_bits, "accumulator": self.acc_bits,
                       "cell": [l.cell_bits for l in self.model.layers], "output_word": self.word_bits},
            "output_words_per_sequence": self.n_words,
            "cycles": {
                "formula": "N·(1 + Σ_l ((H_l/lanes)·(ceil(D_l/fanin) + ceil(H_l/fanin)) + "
                           f"{self.schedule.layer_overhead})) + 2 + W"
                           + (" + head_steps + 3" if self.head_in_hw else ""),
                "instance": self.schedule.formula(),
                "per_element": 1 + self.schedule.element_cycles,
                "fixed": self.schedule.cycles(1) - (1 + self.schedule.element_cycles),
            },
            "multipliers": self.multipliers(),
            "multipliers_total": sum(self.multipliers().values()),
            "memories": {"weights": {"depth": int(rom_w.shape[0]), "width": int(rom_w.shape[1]) * self.weight_bits},
                         "biases": {"depth": int(rom_b.shape[0]),
                                    "width": int(rom_b.shape[1]) * values_width(rom_b)}},
        }

    # ------------------------------------------------------------------------------------------
    # hardware

    def elaborate(self, platform) -> Module:
        m = Module()
        model, lanes, fanin = self.model, self.lanes, self.fanin
        layers = model.layers
        n_layers = len(layers)
        q = model.frac_bits
        q_one = 1 << q
        rows = 4 * lanes

        m.submodules.mac = mac = MacArray(rows, fanin, self.weight_bits, self.x_bits, self.acc_bits,
                                          product_registers=(0, 0, 1, 1, 1, 2, 2, 2)[self.mac_stages],
                                          operand_registers=(0, 0, 0, 1, 2, 2, 2, 2)[self.mac_stages],
                                          sum_register=self.mac_stages >= 6, weights_late=self.mac_stages == 7)
        m.submodules.wrom = wrom = PackedRom(self.weight_rom(), self.weight_bits,
                                             bank_depth=WEIGHT_ROM_BANK_DEPTH if self.mac_stages == 7 else None)
        m.submodules.brom = brom = PackedRom(self.bias_rom())
        m.submodules.ser = ser = OutputSerializer(self.n_words, self.word_bits)
        wiring.connect(m, wiring.flipped(self.o), ser.o)

        # State: the input element, h(n−1) (committed), h(n) (being written); c is in RAM (stage B).
        x_reg = [Signal(signed(model.input_bits), name=f"x{d}") for d in range(model.input_size)]
        last_flag = Signal()
        h_prev = [[Signal(signed(self.h_bits), name=f"h{l}_{u}") for u in range(layer.hidden_size)]
                  for l, layer in enumerate(layers)]
        h_new = [[Signal(signed(self.h_bits), name=f"hn{l}_{u}") for u in range(layer.hidden_size)]
                 for l, layer in enumerate(layers)]

        # Operand chunks, indexed by a global chunk id (layer base + k).
        zero = Const(0, signed(self.x_bits))
        chunks: list[list[Value]] = []
        chunk_base: list[int] = []
        for l, layer in enumerate(layers):
            chunk_base.append(len(chunks))
            _, kx, kh = self.layer_chunks(l)
            below = x_reg if l == 0 else h_prev[l - 1]
            for source, count in ((below, kx), (h_prev[l], kh)):
                for k in range(count):
                    chunks.append([source[k * fanin + t] if k * fanin + t < len(source) else zero
                                   for t in range(fanin)])
        chunk_arrays = [Array(chunk[t] for chunk in chunks) for t in range(fanin)]

        # Issue stage: one chunk/group sequencer per layer (G_l groups × K_l chunks, started when
        # the layer's turn comes); the beat of the current layer's; ROM addresses.
        groups = [self.layer_chunks(l)[0] for l in range(n_layers)]
        per_group = [self.layer_chunks(l)[1] + self.layer_chunks(l)[2] for l in range(n_layers)]
        kx_of = [self.layer_chunks(l)[1] for l in range(n_layers)]
        waddr_base = np.cumsum([0] + [groups[l] * per_group[l] for l in range(n_layers)]).tolist()
        baddr_base = np.cumsum([0] + groups).tolist()
        layer_rng = range(max(n_layers, 2))
        i_layer = Signal(layer_rng)
        i_group = Signal(range(max(groups) + 1))
        i_k = Signal(range(max(per_group) + 1))
        waddr = Signal(range(max(waddr_base[-1], 2)))
        baddr = Signal(range(max(baddr_base[-1], 2)))
        issuing, last_k, last_g, issue_start = Signal(), Signal(), Signal(), Signal()
        start_layer = Signal(layer_rng)  # the layer whose run issue_start begins
        for l in range(n_layers):
            seq = ChunkSequencer(passes=1, groups=groups[l], chunks=per_group[l])
            m.submodules[f"sequencer_{l}"] = seq
            m.d.comb += seq.start.eq(issue_start & (start_layer == l))
            with m.If(i_layer == l):
                m.d.comb += [issuing.eq(seq.beat.valid), i_group.eq(seq.beat.g), i_k.eq(seq.beat.c),
                             last_k.eq(seq.beat.last), last_g.eq(seq.beat.g == groups[l] - 1)]
        kx_a = Array(Const(v, range(max(per_group) + 1)) for v in kx_of)
        base_a = Array(Const(v, range(len(chunks) + 1)) for v in chunk_base)
        # with mac_stages ≥ 2 the bias word is read mac_stages − 1 cycles later, when its step's
        # sum is accumulated
        bias_addr = baddr
        for level in range(self.mac_stages - 2):  # the operand (and extra product) cycles
            bias_addr = delayed(m, bias_addr, "baddr_m" if level == 0 else f"baddr_m{level + 1}")
        if self.mac_stages >= 2:
            bias_addr = delayed(m, bias_addr, "baddr_p")
        m.d.comb += [wrom.addr.eq(waddr), wrom.en.eq(1), brom.addr.eq(bias_addr), brom.en.eq(1)]

        # Step stage (ROM data valid): the MAC array.
        s_valid = Signal()
        s_layer = Signal(layer_rng)
        s_group = Signal.like(i_group)
        s_first = Signal()  # first input chunk: start from 0
        s_rebase = Signal()  # first recurrent chunk: start from (acc >> x_shift) + b
        s_last = Signal()  # last chunk of a group
        s_final = Signal()  # a step of the layer's last group
        s_chunk = Signal(range(len(chunks) + 1))
        m.d.sync += [
            s_valid.eq(issuing),
            s_layer.eq(i_layer),
            s_group.eq(i_group),
            s_first.eq(i_k == 0),
            s_rebase.eq(i_k == kx_a[i_layer]),
            s_last.eq(last_k & issuing),
            s_final.eq(last_g),
            s_chunk.eq(base_a[i_layer] + i_k),
        ]
        m.d.comb += [
            mac.weights.eq(wrom.data),
            mac.en.eq(s_valid),
            mac.accumulate.eq(~s_first & ~s_rebase),
        ]
        m.d.comb += [mac.inputs[t].eq(chunk_arrays[t][s_chunk]) for t in range(fanin)]
        # Accumulate stage (the step's sum enters acc): the step stage, or with mac_stages = 2 the
        # cycle after (the MAC array's product registers), with mac_stages = 3..7 mac_stages − 1
        # cycles after (the weight word's bank register with 7, its operand registers, then its
        # product and sum registers; the operands are still selected here, in the step stage);
        # the init of a rebase then sees acc after the group's last input chunk, and the bias
        # word of its delayed address.
        t_first, t_layer, t_group, t_last, t_final = s_first, s_layer, s_group, s_last, s_final
        for level in range(self.mac_stages - 2):  # the operand (and second product) cycles' copies: m_*, m2_*, …
            prefix = "m" if level == 0 else f"m{level + 1}"
            t_first, t_layer, t_group, t_last, t_final = (
                delayed(m, v, prefix + v.name[v.name.index("_"):]) for v in (t_first, t_layer, t_group, t_last, t_final))
        if self.mac_stages >= 2:
            t_first, t_layer, t_group, t_last, t_final = (
                delayed(m, v, "t" + v.name[v.name.index("_"):]) for v in (t_first, t_layer, t_group, t_last, t_final))
        for r in range(rows):
            x_shift = layers[0].x_shift[r // lanes]
            shifted = mac.acc[r] >> x_shift
            if n_layers > 1:  # layers ≥ 2 have no shift
                shifted = Mux(t_layer == 0, shifted, mac.acc[r])
            if self.mac_stages >= 4:
                # the bias enters at the group's first step as b·2^x_shift, the rebase only shifts:
                # ⌊(s + b·2^k) / 2^k⌋ = ⌊s / 2^k⌋ + b, and no clock path adds b and the step's sum
                # in series (the bias word of the group is on brom.data at every step's sum)
                bias = brom.data[r] << x_shift
                if n_layers > 1:
                    bias = Mux(t_layer == 0, bias, brom.data[r])
                m.d.comb += mac.init[r].eq(Mux(t_first, bias, shifted))
            else:
                m.d.comb += mac.init[r].eq(Mux(t_first, 0, shifted + brom.data[r]))

        # The activation stages A, B, C; with act_stages = 2 each splits after its multipliers
        # (A1 | A2, B1 | B2, C1 | C2), with act_stages = 3 also after its first carry chain
        # (A1 | A2 | A3, B1 | B2 | B3, C1 | C2 | C3): ``cut`` registers a value crossing the first
        # split, ``cut3`` one crossing the second, and each stage's (valid, layer, group, final)
        # tags are registered along (``split_tags``).
        split = self.act_stages >= 2
        third = self.act_stages >= 3
        fourth = self.act_stages == 4

        def cut(value: Value, name: str) -> Value:
            return delayed(m, value, name) if split else value

        def cut3(value: Value, name: str) -> Value:
            return delayed(m, value, name) if third else value

        def narrow(value: Value, name: str) -> Signal:
            """``value`` (within ±Q) registered at the activation width (act_stages = 3)."""
            reg = Signal(signed(self.h_bits), name=name)
            m.d.sync += reg.eq(value)
            return reg

        def split_tags(tags: tuple[Signal, ...], stage: str) -> tuple[Signal, ...]:
            return tuple(delayed(m, v, stage + v.name[v.name.index("_"):]) for v in tags) if split else tags

        def split3_tags(tags: tuple[Signal, ...], stage: str) -> tuple[Signal, ...]:
            return split_tags(tags, stage) if third else tags

        # Stage A (cycle after a group's last accumulation; acc holds z): the gate activations.
        a_valid = Signal()
        a_layer = Signal(layer_rng)
        a_group = Signal.like(i_group)
        a_final = Signal()
        m.d.sync += [a_valid.eq(t_last), a_layer.eq(t_layer), a_group.eq(t_group), a_final.eq(t_final)]
        S = layers[0].act_shift  # equal in every layer (checked in __init__)
        gate_regs = {g: [Signal(signed(self.h_bits), name=f"{g}_{j}") for j in range(lanes)] for g in GATES}
        mult = {g: [_coefficient([int(layer.act_mult[g][s]) for layer in layers]) for s in (0, 1)] for g in GATES}

        def coeff(c: Value | Array, layer_sel: Value) -> Value:
            return c[layer_sel] if isinstance(c, Array) else c

        def clip_limits(coefficients: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]] | None:
            """With act_stages = 4 and positive coefficients ((M+, M−) per layer): each layer's
            :func:`clip_thresholds` (x_hi, x_lo) of the clip to [lo, hi] after ``(x·M) >> S``;
            else None (the clip compares the product)."""
            limits = [clip_thresholds(m_pos, m_neg, S, lo, hi) for m_pos, m_neg in coefficients]
            return limits if fourth and all(limits) else None

        def passed_bits(operand: Value, limits: list[tuple[int, int]] | None) -> Value:
            """The multiplier's operand: with ``limits``, ``operand``'s low bits that hold every
            value the clip passes (x_lo < x < x_hi in some layer); outside them the product is
            not selected (``clip_stage``), so the bits above change no output and the multiplier
            narrows (an accumulator wider than 18 bits needs two MULT18X18D and an adder)."""
            if limits is None:
                return operand
            width = signed_bits(min(t[1] for t in limits) + 1, max(t[0] for t in limits) - 1)
            return operand[:width].as_signed() if width < len(operand) else operand

        def clip_stage(operand: Value, product: Value, limits: list[tuple[int, int]] | None, lo: int, hi: int,
                       layer_sel: Value, names: tuple[str, str, str]) -> Signal:
            """``product`` (the registered ``(operand·M) >> S``) clipped to [lo, hi] and registered
            (``narrow``, named ``names[2]``); with ``limits`` (:func:`clip_limits`) the clip's two
            comparisons run on ``operand`` in the multiplier's cycle (registered as ``names[0]``,
            ``names[1]``), so that the clip is a multiplexer after the multiplier."""
            if limits is not None:
                over = cut(operand >= coeff(_coefficient([t[0] for t in limits]), layer_sel), names[0])
                under = cut(operand <= coeff(_coefficient([t[1] for t in limits]), layer_sel), names[1])
                return narrow(Mux(over, hi, Mux(under, lo, product)), names[2])
            return narrow(_clip(product, lo, hi), names[2])

        for j in range(lanes):
            for a, g in enumerate(GATES):
                z = mac.acc[a * lanes + j]
                m_pos, m_neg = coeff(mult[g][0], a_layer), coeff(mult[g][1], a_layer)
                if third:
                    # A1: (z·M) >> S; A2: the clip, moved before the offset (clip(x + k, lo, hi) =
                    # clip(x, lo − k, hi − k) + k); A3: + Q/2 for the sigmoid gates
                    offset = 0 if g == "g" else q_one // 2
                    lo, hi = (-q_one if g == "g" else 0) - offset, q_one - offset
                    limits = clip_limits([(int(layer.act_mult[g][0]), int(layer.act_mult[g][1 if g == "g" else 0]))
                                          for layer in layers], lo, hi)
                    zm = cut((passed_bits(z, limits) * (Mux(z >= 0, m_pos, m_neg) if g == "g" else m_pos)) >> S,
                             f"zm{g}_{j}")
                    za = clip_stage(z, zm, limits, lo, hi, a_layer, (f"zo{g}_{j}", f"zu{g}_{j}", f"za{g}_{j}"))
                    value = za + offset if offset else za
                elif g == "g":
                    value = _clip(cut((z * Mux(z >= 0, m_pos, m_neg)) >> S, f"zm{g}_{j}"), -q_one, q_one)
                else:  # sigmoid gates: M+ = M− (checked in __init__)
                    value = _clip(cut((z * m_pos) >> S, f"zm{g}_{j}") + q_one // 2, 0, q_one)
                m.d.sync += gate_regs[g][j].eq(value)
        a_valid, a_layer, a_group, a_final = split_tags((a_valid, a_layer, a_group, a_final), "a2")  # A2's
        a_valid, a_layer, a_group, a_final = split3_tags((a_valid, a_layer, a_group, a_final), "a3")  # A3's

        # Stage B: c(n) = sat((f·c(n−1) + i·g) >> q), written back in place.
        b_valid = Signal()
        b_layer = Signal(layer_rng)
        b_group = Signal.like(i_group)
        b_final = Signal()
        m.d.sync += [b_valid.eq(a_valid), b_layer.eq(a_layer), b_group.eq(a_group), b_final.eq(a_final & a_valid)]
        group_base = np.cumsum([0] + groups[:-1]).tolist()
        unit_sel = Signal(range(sum(groups) + 1))
        unit_base = Array(Const(v, range(sum(groups) + 1)) for v in group_base)
        # c(n−1) of the group: with act_stages = 3 selected by A3's tags and registered (``cp_j``),
        # so that B1's multipliers read registers only (the group's c was written an element ago)
        m.d.comb += unit_sel.eq(unit_base[a_layer] + a_group if third else unit_base[b_layer] + b_group)
        b_valid, b_layer, b_group, b_final = split_tags((b_valid, b_layer, b_group, b_final), "b2")  # B2's
        b_valid, b_layer, b_group, b_final = split3_tags((b_valid, b_layer, b_group, b_final), "b3")  # B3's
        # c of every unit: one RAM per lane, word unit_base[layer] + group (a few LUT RAM cells
        # next to the lane, where a flip-flop per unit bit and a multiplexer over the units spread
        # over the die), and a flag per word: a word reads 0 until its first write after a clear
        # (the readout's clear or a reset then takes one cycle, as with flip-flops). The new c is
        # written from its register ``cn`` in the cycle after B (stage C's first), which no
        # cycle sees: the group's c is read again an element (or a layer) later, after the drain.
        cell_width = max(l.cell_bits for l in layers)
        words = sum(groups)
        c_live = Signal(words)
        c_new = [Signal(signed(cell_width), name=f"cn_{j}") for j in range(lanes)]
        o_c = [Signal(signed(self.h_bits), name=f"oc_{j}") for j in range(lanes)]
        c_writes = []
        for j in range(lanes):
            m.submodules[f"c_ram_{j}"] = c_ram = Memory(shape=signed(cell_width), depth=words, init=[],
                                                        attrs=ram_attrs(words))
            c_read = c_ram.read_port(domain="comb")
            c_writes.append(c_ram.write_port())
            m.d.comb += c_read.addr.eq(unit_sel)
            c_prev = Mux(c_live.bit_select(unit_sel, 1), c_read.data, 0)
            if third:
                c_prev = delayed(m, c_prev, f"cp_{j}")
            fc = cut(gate_regs["f"][j] * c_prev, f"fc_{j}")  # B1: c(n−1) read by unit_sel, the products
            ig = cut(gate_regs["i"][j] * gate_regs["g"][j], f"ig_{j}")
            o = cut(gate_regs["o"][j], f"ob_{j}")
            total = cut3(fc + ig, f"cs_{j}") >> q  # act_stages = 3: B2 the sum; B3 shift, saturate
            o = cut3(o, f"ob3_{j}")
            bounds = [(-(1 << (l.cell_bits - 1)), (1 << (l.cell_bits - 1)) - 1) for l in layers]
            sat = _clip(total, *bounds[0])
            if len(set(bounds)) > 1:
                sat = Mux(b_layer == 0, sat, _clip(total, *bounds[1]))
            m.d.sync += [c_new[j].eq(sat), o_c[j].eq(o)]

        # Stage C: tc = clip((c·Mc±) >> S), h = (o·tc) >> q; after the last group, commit h.
        c_valid = Signal()
        c_layer = Signal(layer_rng)
        c_group = Signal.like(i_group)
        c_final = Signal()
        m.d.sync += [c_valid.eq(b_valid), c_layer.eq(b_layer), c_group.eq(b_group), c_final.eq(b_final)]
        c_write = Signal(range(max(words, 2)))
        m.d.comb += c_write.eq(unit_base[c_layer] + c_group)
        for j, c_wr in enumerate(c_writes):
            m.d.comb += [c_wr.addr.eq(c_write), c_wr.data.eq(c_new[j]), c_wr.en.eq(c_valid)]
        with m.If(c_valid):
            m.d.sync += c_live.bit_select(c_write, 1).eq(1)
        c_mult = [_coefficient([int(layer.c_mult[s]) for layer in layers]) for s in (0, 1)]
        h_fresh = []
        for j in range(lanes):
            cv = c_new[j]
            mc = Mux(cv >= 0, coeff(c_mult[0], c_layer), coeff(c_mult[1], c_layer))
            if third:  # C1: c·Mc >> S; C2: the clip (tc); C3: h (act_stages = 4: C3 o·tc, C4 h)
                limits = clip_limits([(int(layer.c_mult[0]), int(layer.c_mult[1])) for layer in layers], -q_one, q_one)
                cm = cut((passed_bits(cv, limits) * mc) >> S, f"cm_{j}")
                tc = clip_stage(cv, cm, limits, -q_one, q_one, c_layer, (f"tco_{j}", f"tcu_{j}", f"tc_{j}"))
                product = cut3(cut(o_c[j], f"ot_{j}"), f"ot3_{j}") * tc
                h_fresh.append((delayed(m, product, f"oh_{j}") if fourth else product) >> q)
            else:
                tc = cut(_clip((cv * mc) >> S, -q_one, q_one), f"tc_{j}")  # C1: tc; C2: h
                h_fresh.append((cut(o_c[j], f"ot_{j}") * tc) >> q)
        # the stage before the commit (B, C1, C2 or C3 with act_stages 1, 2, 3, 4): its last group ends DRAIN
        pre_valid, pre_layer, pre_final = (c_valid, c_layer, c_final) if split else (b_valid, b_layer, b_final)
        c_valid, c_layer, c_group, c_final = split_tags((c_valid, c_layer, c_group, c_final), "c2")  # C2's
        if third:
            pre_valid, pre_layer, pre_final = c_valid, c_layer, c_final
            c_valid, c_layer, c_group, c_final = split_tags((c_valid, c_layer, c_group, c_final), "c3")  # C3's
        if fourth:
            pre_valid, pre_layer, pre_final = c_valid, c_layer, c_final
            c_valid, c_layer, c_group, c_final = split_tags((c_valid, c_layer, c_group, c_final), "c4")  # C4's
        with m.If(c_valid):
            for l in range(n_layers):
                for g in range(groups[l]):
                    with m.If((c_layer == l) & (c_group == g)):
                        m.d.sync += [h_new[l][g * lanes + j].eq(h_fresh[j]) for j in range(lanes)]
                with m.If(c_final & (c_layer == l)):
                    last_base = (groups[l] - 1) * lanes
                    for u in range(layers[l].hidden_size):
                        m.d.sync += h_prev[l][u].eq(h_fresh[u - last_base] if u >= last_base else h_new[l][u])

        # Control.
        readout_valid = Signal()
        clear = Signal()
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    lanes_in = input_lanes(model, "direct", self.i.p.data)
                    m.d.sync += [x_reg[d].eq(lanes_in[d]) for d in range(model.input_size)]
                    m.d.sync += [last_flag.eq(self.i.p.last), i_layer.eq(0), waddr.eq(0), baddr.eq(0)]
                    m.d.comb += [issue_start.eq(1), start_layer.eq(0)]
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.sync += waddr.eq(waddr + 1)
                with m.If(last_k):
                    m.d.sync += baddr.eq(baddr + 1)
                    with m.If(last_g):
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                # Wait for the stage before the commit of the layer's last group (B, C1 or C2
                # with act_stages = 1, 2, 3, 4); leave in the commit cycle (C, C2, C3 or C4).
                with m.If(pre_valid & pre_final):
                    with m.If(pre_layer != n_layers - 1):
                        m.d.sync += i_layer.eq(i_layer + 1)
                        m.d.comb += [issue_start.eq(1), start_layer.eq(i_layer + 1)]
                        m.next = "ISSUE"
                    with m.Elif(last_flag):
                        m.next = "FLUSH"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("FLUSH"):
                m.next = "HANDOFF"
            with m.State("HANDOFF"):
                m.d.comb += readout_valid.eq(1)
                m.next = "HANDOFF"
                with m.If(clear):
                    m.next = "IDLE"
        # Readout to the serializer, or through the FC head.
        readout = h_prev[n_layers - 1]
        if self.head_in_hw:
            lo, hi = readout_range(model)
            m.submodules.head = head = FCHead(model.head, lo, hi)
            m.d.comb += [head.i.valid.eq(readout_valid), clear.eq(readout_valid & head.i.ready)]
            m.d.comb += [head.i.p[j].eq(readout[j]) for j in range(len(readout))]
            words = [head.o.p.readout[j] for j in range(len(readout))]
            words += [head.o.p.logits[k] for k in range(model.num_classes)]
            words += [head.o.p.cls]
            m.d.comb += [ser.i.valid.eq(head.o.valid), head.o.ready.eq(ser.i.ready)]
        else:
            words = list(readout)
            m.d.comb += [ser.i.valid.eq(readout_valid), clear.eq(readout_valid & ser.i.ready)]
        m.d.comb += [ser.i.p[k].eq(w) for k, w in enumerate(words)]
        with m.If(clear):
            m.d.sync += c_live.eq(0)
            for l in range(n_layers):
                m.d.sync += [s.eq(0) for s in h_prev[l] + h_new[l]]
        return m


def _component(model: FrozenBaseline, knobs: BaselineKnobs) -> BaselineCore:
    return BaselineCore(model, lanes=knobs.lanes, fanin=knobs.fanin, head_in_hw=knobs.head_in_hw,
                        mac_stages=knobs.mac_stages, act_stages=knobs.act_stages)


SPEC = CoreSpec(
    name="baseline", label="MAC baseline core", top="mac_lstm_core", verilog_file="baseline_core.v",
    model_type=FrozenBaseline, model_option="--baseline", knobs_type=BaselineKnobs, component=_component,
    schedule=BaselineSchedule.from_model, golden=golden.run_baseline,
    pipeline_cuts=(
        PipelineCut("mac_stages", r"(^|\.)mac\."),  # the MAC array: operands, products, adder trees, accumulators
        # the activation stages live in the core's own module: their registers (gates, h and
        # the act_stages = 2, 3 split registers) and c's LUT RAM cells name the paths through them
        PipelineCut("act_stages",
                    r"\.((z[maou][figo]|[figo]|cn|cp|oc|fc|ig|ob3?|cs|cm|tc[ou]?|ot3?|oh)_\d+|hn\d+_\d+|unit_sel)_TRELLIS"
                    r"|\.c_ram_\d+\."),
    ),
)
"""The MAC baseline core's registration (:mod:`snnhw.hw.registry`)."""

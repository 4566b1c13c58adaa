"""One engine of the spiking wavefront: the datapath of one time-step slot.

Per beat the engine sums, for every gate and every one of its ``lanes`` units, ``fanin``
weights selected by its own spikes (:class:`~snnhw.hw.adder_tree.SpikeAdderTree`, add /
subtract / skip) into a pre-activation accumulator; on a unit group's last beat it adds the
base (bias + direct projection), and runs the gate neurons
(:class:`~snnhw.hw.neuron_lanes.GateNeurons`) and the cell update
(:class:`~snnhw.hw.cell_update.CellUpdate`). Engines are identical; the wavefront broadcasts
one weight word to all of them. No multiplier.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from snnhw.hw.adder_tree import SPIKE_SHAPE, SpikeAdderTree
from snnhw.hw.cell_update import CellUpdate
from snnhw.hw.knobs import check_stages
from snnhw.hw.leak_unit import delayed
from snnhw.hw.neuron_lanes import GateNeurons, gates_layout, membranes_layout, validate_layer
from snnhw.quant.frozen import SpikingLayer

BEAT_LAYOUT = data.StructLayout({"valid": 1, "first": 1, "last": 1})
"""One beat: ``valid``; ``first`` (first chunk of a unit group: the accumulator restarts);
``last`` (last chunk: the group's pre-activations are complete)."""


def weights_layout(weight_bits: int, lanes: int, fanin: int) -> data.ArrayLayout:
    """One broadcast weight word: ``[gate f,i,g,o][lane][synapse]``, signed ``weight_bits``."""
    return data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(signed(weight_bits), fanin), lanes), 4)


def gate_lanes_layout(bits: int, lanes: int) -> data.ArrayLayout:
    """``[gate][lane]`` of signed ``bits`` values (pre-activations, bias, projection)."""
    return data.ArrayLayout(data.ArrayLayout(signed(bits), lanes), 4)


class Engine(wiring.Component):
    """The cell datapath of one slot: accumulate, then neurons, then cell update.

    Parameters:
        layer: the frozen layer; weight_bits: signed weight width; lanes (≥ 1); fanin (≥ 1).
        tree_stages: 1, or 2 to register every input (beat, weights, spikes; one cycle later base,
            u_prev, c_prev) in front of the adder trees: the path from the beat through the
            wavefront's spike selection ends there. Adds one cycle to the outputs.
        gate_stages: pipeline stages of the gate neurons, 1..3 (each adds one cycle to the outputs).
        cell_stages: pipeline stages of the cell update, 1..6 (each adds one cycle to the outputs).
        trace: add the debug outputs ``gates`` and ``s_c`` (see the timing).

    Timing (cycle x = a beat's cycle):
        x:   ``beat``, ``weights``, ``spikes`` (this beat's chunk).
        x+1: ``base`` (bias + projection), ``u_prev`` (membranes U(n, t−1)), ``c_prev``
             (c(n−1, t)) — read only when the beat at x was ``last``.
        x+tree_stages+gate_stages+cell_stages (x+3 with one stage each): ``out_valid`` (the beat at x was valid and last), ``h``, ``c``, ``u`` (U(n, t));
             with ``trace`` also ``gates`` (s_f, s_o; i, g: spike or clip value, as
             ``neuron_lanes.gates_layout``) and ``s_c`` (c's ternary spike, signed(2)) of the cell.
    A beat may come every cycle; groups follow back to back.

    Ports: see the timing; ``u`` / ``u_prev`` are ``ArrayLayout(membranes_layout(layer), lanes)``.
    """

    def __init__(self, layer: SpikingLayer, *, weight_bits: int, lanes: int, fanin: int,
                 tree_stages: int = 1, gate_stages: int = 1, cell_stages: int = 1, trace: bool = False) -> None:
        validate_layer(layer)
        for name, v in (("lanes", lanes), ("fanin", fanin)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"Engine {name} must be an integer ≥ 1, not {v!r}")
        if not isinstance(weight_bits, int) or not 2 <= weight_bits <= 16:
            raise ValueError(f"Engine weight_bits must be in 2..16, not {weight_bits!r}")
        self.layer, self.weight_bits, self.lanes, self.fanin = layer, weight_bits, lanes, fanin
        self.has_trace = bool(trace)
        check_stages("Engine ", gate_stages, cell_stages, tree_stages)
        self.tree_stages, self.gate_stages, self.cell_stages = tree_stages, gate_stages, cell_stages
        mem = data.ArrayLayout(membranes_layout(layer), lanes)
        ports = {
            "beat": In(BEAT_LAYOUT),
            "weights": In(weights_layout(weight_bits, lanes, fanin)),
            "spikes": In(data.ArrayLayout(SPIKE_SHAPE, fanin)),
            "base": In(gate_lanes_layout(layer.acc_bits, lanes)),
            "u_prev": In(mem),
            "c_prev": In(data.ArrayLayout(signed(layer.cell_bits), lanes)),
            "out_valid": Out(1),
            "h": Out(data.ArrayLayout(SPIKE_SHAPE, lanes)),
            "c": Out(data.ArrayLayout(signed(layer.cell_bits), lanes)),
            "u": Out(mem),
        }
        if self.has_trace:
            ports["gates"] = Out(data.ArrayLayout(gates_layout(layer), lanes))
            ports["s_c"] = Out(data.ArrayLayout(SPIKE_SHAPE, lanes))
        super().__init__(ports)

    @property
    def latency(self) -> int:
        """Cycles from a last beat to its outputs: adder tree ``tree_stages`` + gate neurons
        ``gate_stages`` + cell update ``cell_stages`` (3 with one stage each)."""
        return self.tree_stages + self.gate_stages + self.cell_stages

    @property
    def adders(self) -> int:
        """Synapse additions per cycle: 4 gates × lanes × fanin."""
        return 4 * self.lanes * self.fanin

    def elaborate(self, platform):
        m = Module()
        layer, L = self.layer, self.lanes
        acc_shape = signed(layer.acc_bits)
        m.submodules.neurons = neurons = GateNeurons(layer, L, stages=self.gate_stages)
        m.submodules.cell = cell = CellUpdate(layer, L, stages=self.cell_stages, trace=self.has_trace)
        beat, weights, spikes = self.beat, self.weights, self.spikes
        base, u_prev, c_prev = self.base, self.u_prev, self.c_prev
        if self.tree_stages == 2:  # every input one cycle later: the adder trees start from registers
            beat, weights, spikes, base, u_prev, c_prev = (
                delayed(m, port, f"{name}_t") for port, name in (
                    (beat, "beat"), (weights, "weights"), (spikes, "spikes"),
                    (base, "base"), (u_prev, "u_prev"), (c_prev, "c_prev")))
        beat1 = Signal(BEAT_LAYOUT)
        m.d.sync += beat1.eq(beat)
        for a in range(4):
            for k in range(L):
                tree = SpikeAdderTree(self.weight_bits, self.fanin)
                m.submodules[f"tree_{a}_{k}"] = tree
                m.d.comb += [tree.weights.eq(weights[a][k]), tree.spikes.eq(spikes)]
                acc = Signal(acc_shape, name=f"acc_{a}_{k}")
                acc_next = Signal(acc_shape, name=f"acc_next_{a}_{k}")
                m.d.comb += acc_next.eq(Mux(beat1.first, 0, acc) + tree.sum)
                with m.If(beat1.valid):
                    m.d.sync += acc.eq(acc_next)
                m.d.comb += neurons.z[a][k].eq(acc_next + base[a][k])
        m.d.comb += neurons.u_prev.eq(u_prev)
        valid2 = Signal()
        c_prev2 = Signal.like(self.c_prev)
        m.d.sync += [valid2.eq(beat1.valid & beat1.last), c_prev2.eq(c_prev)]
        for stage in range(1, self.gate_stages):  # align c(n−1, t) and valid with the gate neurons' outputs
            valid_reg, c_prev_reg = Signal(name=f"valid_g{stage}"), Signal.like(self.c_prev, name=f"c_prev_g{stage}")
            m.d.sync += [valid_reg.eq(valid2), c_prev_reg.eq(c_prev2)]
            valid2, c_prev2 = valid_reg, c_prev_reg
        m.d.comb += [cell.gates.eq(neurons.gates), cell.c_prev.eq(c_prev2)]
        for k in range(L):
            m.d.comb += cell.uc_prev[k].eq(neurons.u_next[k]["c"])
        u_out, valid_out, gates_out = neurons.u_next, valid2, cell.gates
        for stage in range(self.cell_stages):  # align the gate membranes (and trace gates) with the cell's outputs
            u_reg, valid_reg = Signal.like(self.u, name=f"u_s{2 + self.gate_stages + stage}"), \
                Signal(name=f"valid_s{2 + self.gate_stages + stage}")
            m.d.sync += [u_reg.eq(u_out), valid_reg.eq(valid_out)]
            u_out, valid_out = u_reg, valid_reg
            if self.has_trace:
                gates_reg = Signal.like(self.gates, name=f"gates_s{2 + self.gate_stages + stage}")
                m.d.sync += gates_reg.eq(gates_out)
                gates_out = gates_reg
        m.d.comb += [self.h.eq(cell.h), self.c.eq(cell.c), self.u.eq(u_out), self.out_valid.eq(valid_out)]
        for k in range(L):
            m.d.comb += self.u[k]["c"].eq(cell.uc[k])
        if self.has_trace:
            m.d.comb += [self.gates.eq(gates_out),  # the gates of the cell that h, c belong to
                         self.s_c.eq(cell.s_c)]
        return m


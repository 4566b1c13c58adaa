"""Exhaustive block checks: every input vector of a block's domain at small widths (and every
parameter value in range where stated), simulated with ``amaranth.sim`` and compared with the
contract primitives of :mod:`snnhw.quant.arith` — a proof over the space, not a sample.

Blocks: ``LeakUnit`` (every membrane value × the quantizer's leak shapes), the saturate / clip
helpers of ``leak_unit.py`` (every input × every output width / every bound pair),
``SpikeAdderTree`` (every spike vector × every weight vector), ``GateNeurons`` (every
membrane × pre-activation of binary and ternary LIF neurons, every threshold in range, IF and
LIF) and ``CellUpdate`` (every f, o, i, g, c(n−1), U_c(n−1)). The space, the widths and the
vector counts of each check are in ``docs/verification.md`` ("Exhaustive block checks").

Harness. The instances of one check are submodules of one top module; their input ports are
driven from one shared signal per port (raw bits, one vector per clock) and their output ports
are concatenated into one bus read once per clock, ``latency`` cycles later (the block's
``latency`` property). Expected values are computed in batch with NumPy from ``arith``. Inside a
multi-lane or multi-gate block each (gate, lane) slot sees the whole space, rotated by its own
offset, so that every slot gets a different vector in the same cycle (a swapped wire shows).

Every check takes ``corrupt``: one expected value (first instance, first output field, middle
vector) is changed by +1, and the ``*_fails_on_corrupted_expectation`` tests assert that exactly
that one mismatch is reported.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import numpy as np
import pytest
from amaranth.hdl import Cat, Module, Shape, Signal, Value, signed
from amaranth.lib import data
from amaranth.sim import Simulator

from snnhw.hw.adder_tree import SpikeAdderTree
from snnhw.hw.cell_update import CellUpdate
from snnhw.hw.leak_unit import LeakUnit, clip_expr, saturate_expr
from snnhw.hw.neuron_lanes import GATES, GateNeurons
from snnhw.quant import arith
from snnhw.quant.frozen import BinaryNeuron, ClipGate, SpikingLayer, TernaryNeuron
from snnhw.quant.leak_fit import MAX_LEAK_TERMS

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

IF = ((1, 0),)
LIF = ((1, 0), (-1, 3))  # λ = 7/8
GT1 = ((1, 0), (1, 3))  # λ = 1.125
HALF = ((1, 1),)  # λ = 1/2
LEAKS = [IF, LIF, GT1, HALF, ((1, 0), (-1, 1), (-1, 4)), ((1, 15),)]
"""Leaks of the neuron checks: IF, 7/8, 1.125 (> 1), 1/2, a 3-term 0.4375 and the smallest 2^−15."""

Key = tuple  # (port name, field path)
BUS_BITS = 2048
"""Widest observation bus (the simulator's generated code spells masks as decimal literals)."""


# ---------------------------------------------------------------------------------------------
# harness


def _leaves(shape, offset: int = 0, path: tuple = ()) -> Iterable[tuple[tuple, int, int, bool]]:
    """(path, bit offset, width, signed) of every scalar field of a port shape (layouts nested)."""
    if isinstance(shape, data.Layout):
        for key, field in shape:
            yield from _leaves(field.shape, offset + field.offset, path + (key,))
    else:
        s = Shape.cast(shape)
        yield path, offset, s.width, s.signed


def _pack(shape, values: dict[tuple, np.ndarray]) -> list[int]:
    """Raw port values (Python ints) from per-field integer arrays (every field must be given)."""
    raw = None
    for path, off, width, _ in _leaves(shape):
        part = (np.asarray(values[path]).astype(object) & ((1 << width) - 1)) << off
        raw = part if raw is None else raw + part
    return [int(v) for v in raw]


def _unpack(shape, raw: np.ndarray) -> dict[tuple, np.ndarray]:
    """Per-field int64 arrays (sign-extended where signed) from raw port values (object array)."""
    out = {}
    for path, off, width, is_signed in _leaves(shape):
        v = ((raw >> off) & ((1 << width) - 1)).astype(np.int64)
        if is_signed:
            v = np.where(v >= 1 << (width - 1), v - (1 << width), v)
        out[path] = v
    return out


def _simulate(m: Module, drive: list[tuple[Signal, list[int]]], taps: list[Value], latency: int) -> list[np.ndarray]:
    """Drive one raw vector per clock into each ``(signal, values)`` of ``drive``; the raw values of ``taps``.

    ``taps`` are read ``latency`` clocks after their inputs were set (latency 0: combinational,
    read after the inputs settle). Returns one object array (length = vectors) per tap.
    """
    n = len(drive[0][1])
    buses: list[Signal] = []  # taps concatenated into buses of ≤ BUS_BITS (one read per bus and clock)
    group: list[Value] = []
    for t in taps + [None]:
        if group and (t is None or sum(len(g) for g in group) + len(t) > BUS_BITS):
            buses.append(Signal(sum(len(g) for g in group), name=f"observe{len(buses)}"))
            m.d.comb += buses[-1].eq(Cat(*group))
            group = []
        if t is not None:
            group.append(t)
    raws: list[list[int]] = [[] for _ in buses]

    async def tb(ctx):
        for cyc in range(n + latency):
            if cyc < n:
                for sig, vals in drive:
                    ctx.set(sig, vals[cyc])
            if cyc >= latency:
                for bus, raw in zip(buses, raws):
                    raw.append(ctx.get(bus))
            if latency:
                await ctx.tick()
            else:
                await ctx.delay(1e-9)

    sim = Simulator(m)
    if latency:
        sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    out: list[np.ndarray] = []
    taps_left = iter(taps)
    for bus, raw in zip(buses, raws):
        arr, off = np.array(raw, dtype=object), 0
        while off < len(bus):
            t = next(taps_left)
            out.append((arr >> off) & ((1 << len(t)) - 1))
            off += len(t)
    return out


def _instantiate(duts: list, inputs: list[str], outputs: Callable[[object], list[str]]):
    """A top module with ``duts`` as submodules, each input port driven by one shared signal."""
    m = Module()
    shared = {name: Signal(len(Value.cast(getattr(duts[0], name))), name=f"in_{name}") for name in inputs}
    taps, where = [], []
    for k, dut in enumerate(duts):
        m.submodules[f"dut{k}"] = dut
        for name, sig in shared.items():
            assert len(Value.cast(getattr(dut, name))) == len(sig), "instances must share input layouts"
            m.d.comb += Value.cast(getattr(dut, name)).eq(sig)
        for name in outputs(dut):
            taps.append(Value.cast(getattr(dut, name)))
            where.append((k, name))
    return m, shared, taps, where


def _check(duts: list, inputs: dict[str, dict[tuple, np.ndarray]], expected: list[dict[Key, np.ndarray]],
           latency: int, describe: Callable[[int, Key, int], str], corrupt: bool = False) -> tuple[int, list[str]]:
    """Simulate ``duts`` on the packed ``inputs`` and compare every expected field of every vector.

    Returns (number of compared values, mismatch messages). ``corrupt`` adds 1 to one expected
    value (instance 0, its first field, the middle vector) before the comparison.
    """
    ports = sorted({name for exp in expected for name, _ in exp})
    m, shared, taps, where = _instantiate(duts, list(inputs), lambda d: [p for p in ports if hasattr(d, p)])
    drive = [(shared[name], _pack(getattr(duts[0], name).shape(), vals)) for name, vals in inputs.items()]
    raws = _simulate(m, drive, taps, latency)
    got: list[dict[Key, np.ndarray]] = [{} for _ in duts]
    for (k, name), raw in zip(where, raws):
        for path, v in _unpack(getattr(duts[k], name).shape(), raw).items():
            got[k][(name, path)] = v
    if corrupt:
        first = next(iter(expected[0]))
        expected[0][first] = expected[0][first].copy()
        expected[0][first][len(expected[0][first]) // 2] += 1
    compared, bad = 0, []
    for k, exp in enumerate(expected):
        for key, e in exp.items():
            g = got[k][key]
            assert g.shape == e.shape, (key, g.shape, e.shape)
            compared += e.size
            for v in np.flatnonzero(g != e):
                bad.append(f"{describe(k, key, int(v))}: expected {int(e[v])} got {int(g[v])}")
    return compared, bad


def _report(bad: list[str]) -> str:
    return f"{len(bad)} mismatches; first: " + "; ".join(bad[:8])


def _rotation(n: int, slot: int, slots: int) -> np.ndarray:
    """Vector indices of one (gate, lane) slot: the whole space rotated by slot·n/slots."""
    return (np.arange(n) + (slot * n) // slots) % n


def _space(*ranges: Iterable[int]) -> list[np.ndarray]:
    """The Cartesian product of integer ranges as one int64 column per factor (first varies slowest)."""
    grid = np.array(list(itertools.product(*[list(r) for r in ranges])), dtype=np.int64)
    return [grid[:, j] for j in range(grid.shape[1])]


def _srange(bits: int) -> range:
    lo, hi = arith.signed_range(bits)
    return range(lo, hi + 1)


# ---------------------------------------------------------------------------------------------
# LeakUnit


def quantizer_leak_shapes(terms: Iterable[int], shifts: Iterable[int] = range(arith.LEAK_MAX_SHIFT + 1)):
    """Every leak ``fit_leak`` can return with K ∈ ``terms`` terms and distinct exponents in ``shifts``.

    ``fit_leak``'s search space (``leak_fit._candidates``): increasing exponents, every sign.
    """
    out = []
    for k in terms:
        for es in itertools.combinations(list(shifts), k):
            for signs in itertools.product((1, -1), repeat=k):
                out.append(tuple(zip(signs, es)))
    return out


def _run_leak(shapes: list, bits: int, rounding: str, corrupt: bool = False) -> tuple[int, list[str]]:
    duts = [LeakUnit(t, bits, rounding) for t in shapes]
    assert all(d.latency == 0 for d in duts)
    (u,) = _space(_srange(bits))
    expected = [{("y", ()): arith.leak(u, d.terms, rounding)} for d in duts]
    return _check(duts, {"u": {(): u}}, expected, 0,
                  lambda k, key, v: f"LeakUnit(terms={shapes[k]}, in_bits={bits}, {rounding}) u={int(u[v])}",
                  corrupt)


def test_leak_shapes_are_the_quantizers_search_space() -> None:
    from snnhw.quant.leak_fit import _candidates

    assert set(quantizer_leak_shapes(range(1, MAX_LEAK_TERMS + 1))) == set(_candidates(MAX_LEAK_TERMS)[1])
    assert len(quantizer_leak_shapes(range(1, MAX_LEAK_TERMS + 1))) == 34112


LEAK_CASES = {
    # id: (shapes, membrane width)
    "W4-K1..3-e0..15": (lambda: quantizer_leak_shapes((1, 2, 3)), 4),
    "W4-K4-e0..5": (lambda: quantizer_leak_shapes((4,), range(6)), 4),
    "W2-K1..2-e0..15": (lambda: quantizer_leak_shapes((1, 2)), 2),
    "W7-K1..2-e0..15": (lambda: quantizer_leak_shapes((1, 2)), 7),
}


@pytest.mark.parametrize("rounding", arith.LEAK_ROUNDINGS)
@pytest.mark.parametrize("case", list(LEAK_CASES))
def test_leak_unit_exhaustive(case: str, rounding: str) -> None:
    make, bits = LEAK_CASES[case]
    compared, bad = _run_leak(make(), bits, rounding)
    assert not bad, _report(bad)
    assert compared == len(make()) * (1 << bits)


@pytest.mark.slow
@pytest.mark.parametrize("rounding", arith.LEAK_ROUNDINGS)
@pytest.mark.parametrize("part", range(4))
def test_leak_unit_exhaustive_all_four_term_shapes(part: int, rounding: str) -> None:
    """Every 4-term shape (29120) at W = 4, in four simulations per rounding (``--runslow``)."""
    shapes = quantizer_leak_shapes((4,))[part::4]
    _, bad = _run_leak(shapes, 4, rounding)
    assert not bad, _report(bad)


@pytest.mark.parametrize("rounding", arith.LEAK_ROUNDINGS)
def test_leak_unit_exhaustive_fails_on_corrupted_expectation(rounding: str) -> None:
    _, bad = _run_leak(quantizer_leak_shapes((1, 2), range(5)), 4, rounding, corrupt=True)
    assert len(bad) == 1 and bad[0].startswith(
        f"LeakUnit(terms=((1, 0),), in_bits=4, {rounding}) u=0: expected 1 got 0"), bad


# ---------------------------------------------------------------------------------------------
# saturate / clip helpers


SATCLIP_IN_BITS = 6


def _run_satclip(max_in_bits: int = SATCLIP_IN_BITS, corrupt: bool = False) -> tuple[int, list[str]]:
    """``saturate_expr`` for every input width 1..max and output width 1..w+2; ``clip_expr`` for every
    bound pair lo ≤ hi within the input range widened by 2 on each side; every input value."""
    m = Module()
    x = Signal(signed(max_in_bits), name="x")
    taps, labels, expected = [], [], []
    (xv,) = _space(_srange(max_in_bits))
    for w in range(1, max_in_bits + 1):
        xs = x[:w].as_signed()
        xw = ((xv + (1 << (w - 1))) & ((1 << w) - 1)) - (1 << (w - 1))  # x[:w] as signed
        for b in range(1, w + 3):
            taps.append(saturate_expr(m, xs, b))
            labels.append((f"saturate_expr(in signed({w}), bits={b})", xw))
            expected.append(arith.saturate(xw, b))
        lo_x, hi_x = arith.signed_range(w)
        for lo in range(lo_x - 2, hi_x + 3):
            for hi in range(lo, hi_x + 3):
                taps.append(clip_expr(m, xs, lo, hi))
                labels.append((f"clip_expr(in signed({w}), lo={lo}, hi={hi})", xw))
                expected.append(arith.clip(xw, lo, hi))
    raws = _simulate(m, [(x, [int(v) for v in xv])], taps, 0)
    if corrupt:
        expected[0] = expected[0].copy()
        expected[0][len(xv) // 2] += 1
    compared, bad = 0, []
    for tap, raw, (label, xw), e in zip(taps, raws, labels, expected):
        g = _unpack(tap.shape(), raw)[()]
        compared += e.size
        bad += [f"{label} x={int(xw[v])}: expected {int(e[v])} got {int(g[v])}" for v in np.flatnonzero(g != e)]
    return compared, bad


def test_saturate_and_clip_helpers_exhaustive() -> None:
    compared, bad = _run_satclip()
    assert not bad, _report(bad)
    assert compared > 100_000


def test_saturate_and_clip_helpers_fail_on_corrupted_expectation() -> None:
    _, bad = _run_satclip(2, corrupt=True)
    assert bad == ["saturate_expr(in signed(1), bits=1) x=0: expected 1 got 0"], bad


# ---------------------------------------------------------------------------------------------
# SpikeAdderTree


TREE_CASES = [(2, 1), (3, 1), (2, 2), (3, 2), (2, 3), (3, 3), (2, 4)]
"""(weight_bits, fanin): 3^F spike vectors × 2^(wb·F) weight vectors each."""


def _run_tree(weight_bits: int, fanin: int, corrupt: bool = False) -> tuple[int, list[str]]:
    dut = SpikeAdderTree(weight_bits, fanin)
    assert dut.latency == 1
    cols = _space(*([range(-1, 2)] * fanin + [_srange(weight_bits)] * fanin))
    s, w = np.stack(cols[:fanin], axis=1), np.stack(cols[fanin:], axis=1)
    expected = [{("sum", ()): arith.spike_select(s, w).sum(axis=1)}]
    inputs = {"spikes": {(f,): s[:, f] for f in range(fanin)}, "weights": {(f,): w[:, f] for f in range(fanin)}}
    return _check([dut], inputs, expected, dut.latency,
                  lambda k, key, v: f"SpikeAdderTree({weight_bits}, {fanin}) s={s[v].tolist()} w={w[v].tolist()}",
                  corrupt)


@pytest.mark.parametrize("weight_bits,fanin", TREE_CASES)
def test_adder_tree_exhaustive(weight_bits: int, fanin: int) -> None:
    compared, bad = _run_tree(weight_bits, fanin)
    assert not bad, _report(bad)
    assert compared == 3 ** fanin * (1 << (weight_bits * fanin))


def test_adder_tree_exhaustive_fails_on_corrupted_expectation() -> None:
    _, bad = _run_tree(2, 2, corrupt=True)
    assert bad == ["SpikeAdderTree(2, 2) s=[0, 0] w=[0, -2]: expected 1 got 0"], bad


# ---------------------------------------------------------------------------------------------
# GateNeurons


def _layer(f, i, g, o, c, cell_bits: int, acc_bits: int) -> SpikingLayer:
    """A layer holding only what the neuron blocks read (weights are unused placeholders)."""
    zeros = np.zeros((4, 1), dtype=np.int64)
    return SpikingLayer(w_x=zeros, w_h=zeros, bias=np.zeros(4, dtype=np.int64), x_shift=(0, 0, 0, 0),
                        f=f, i=i, g=g, o=o, c=c, cell_bits=cell_bits, acc_bits=acc_bits)


def _neuron_out(n, u: np.ndarray, z: np.ndarray):
    """Contract output of one gate: (value, new membrane or None)."""
    if isinstance(n, ClipGate):
        return arith.clip(z, n.lo, n.hi), None
    if isinstance(n, BinaryNeuron):
        return arith.binary_lif(u, z, n.theta, n.leak, n.leak_rounding, n.membrane_bits)
    return arith.ternary_lif(u, z, n.theta_pos, n.theta_neg, n.shift_pos, n.shift_neg, n.leak, n.leak_rounding,
                                n.membrane_bits)


def _run_gate_neurons(layers: list[SpikingLayer], lanes: int, corrupt: bool = False) -> tuple[int, list[str]]:
    """Every (U, z) ∈ membrane range × acc range on every gate and lane of every layer's GateNeurons.

    All layers share the membrane width, ``acc_bits`` and the non-spiking gate (one input layout).
    Slot (gate gi, lane k) gets the space rotated by slot (gi·lanes + k) of 5·lanes; the ``c``
    membrane field (passed through) is slot 4·lanes + k.
    """
    duts = [GateNeurons(layer, lanes) for layer in layers]
    assert all(d.latency == 1 for d in duts)
    first = layers[0]
    widths = {getattr(first, a).membrane_bits for a in duts[0].mem_layout.members}
    assert len(widths) == 1, "one membrane width per group"
    (mem_bits,) = widths
    u_all, z_all = _space(_srange(mem_bits), _srange(first.acc_bits))
    n = len(u_all)
    slots = 5 * lanes
    idx = {(gi, k): _rotation(n, gi * lanes + k, slots) for gi in range(5) for k in range(lanes)}
    names = list(duts[0].mem_layout.members)
    slot_of = {a: (GATES.index(a) if a in GATES else 4) for a in names}
    inputs = {
        "z": {(gi, k): z_all[idx[gi, k]] for gi in range(4) for k in range(lanes)},
        "u_prev": {(k, a): u_all[idx[slot_of[a], k]] for k in range(lanes) for a in names},
    }
    expected = []
    for layer in layers:
        exp: dict[Key, np.ndarray] = {}
        for k in range(lanes):
            for gi, a in enumerate(GATES):
                out, u_new = _neuron_out(getattr(layer, a), u_all[idx[gi, k]], z_all[idx[gi, k]])
                exp[("gates", (k, a))] = out
                if u_new is not None:
                    exp[("u_next", (k, a))] = u_new
            exp[("u_next", (k, "c"))] = u_all[idx[4, k]]
        expected.append(exp)

    def describe(k: int, key: Key, v: int) -> str:
        port, (lane, a) = key
        slot = slot_of[a] if a in slot_of else GATES.index(a)
        j = idx[slot, lane][v]
        return (f"GateNeurons gate {a} = {getattr(layers[k], a)} (acc_bits={layers[k].acc_bits}) lane {lane}, "
                f"{port}.{a} for U={int(u_all[j])} z={int(z_all[j])}")

    return _check(duts, inputs, expected, 1, describe, corrupt)


def _binary_group(mem_bits: int, acc_bits: int, leaks: list, rounding: str = "nearest") -> list[SpikingLayer]:
    """Every θ ∈ 1..2^(W−1)−1 × every leak as binary f, i, o (3 per layer); g = clip(±q), q = 1, 2, …"""
    neurons = [BinaryNeuron(th, lk, mem_bits, rounding) for lk in leaks for th in range(1, 1 << (mem_bits - 1))]
    neurons += neurons[: (-len(neurons)) % 3]
    c = TernaryNeuron(1, 1, 0, 0, IF, mem_bits, rounding)
    return [_layer(f, i, ClipGate(-(j + 1), j + 1), o, c, 4, acc_bits)
            for j, (f, i, o) in enumerate(zip(neurons[0::3], neurons[1::3], neurons[2::3]))]


def _ternary_group(mem_bits: int, acc_bits: int, params: list[tuple[int, int, int, int, tuple]],
                   rounding: str = "nearest") -> list[SpikingLayer]:
    """One layer per ternary g (θ+, θ−, σ+, σ−, leak); i = clip(0, q) and binary f, o vary alongside."""
    th_max = (1 << (mem_bits - 1)) - 1
    layers = []
    for j, (tp, tn, sp, sn, lk) in enumerate(params):
        f = BinaryNeuron(1 + j % th_max, LEAKS[j % len(LEAKS)], mem_bits, rounding)
        o = BinaryNeuron(1 + (j + 1) % th_max, LEAKS[(j + 3) % len(LEAKS)], mem_bits, rounding)
        g = TernaryNeuron(tp, tn, sp, sn, lk, mem_bits, rounding)
        c = TernaryNeuron(1, 1, 0, 0, IF, mem_bits, rounding)
        layers.append(_layer(f, ClipGate(0, 1 + j % (1 << acc_bits)), g, o, c, 4, acc_bits))
    return layers


def _half_up(x: int) -> int:
    return (x + 1) // 2


GATE_GROUPS: dict[str, tuple[Callable[[], list[SpikingLayer]], int]] = {
    # id: (layers, lanes)
    # binary LIF f, i, o (non-spiking g): every θ in range × 6 leaks; z wider than U (both saturations)
    "binary-W4-acc5": (lambda: _binary_group(4, 5, LEAKS), 2),
    "binary-W3-acc5": (lambda: _binary_group(3, 5, LEAKS), 2),
    # z narrower than U
    "binary-W5-acc4": (lambda: _binary_group(5, 4, [IF, LIF]), 2),
    # the same with every leak term floored (frozen format 1)
    "binary-W4-acc5-floor": (lambda: _binary_group(4, 5, LEAKS, "floor"), 2),
    # ternary LIF g (non-spiking i): every (θ+, θ−, σ+, σ−) a 3-bit membrane can hold, IF and LIF
    "ternary-W3-acc4-all": (lambda: _ternary_group(3, 4, [
        (tp, tn, sp, sn, lk) for lk in (IF, LIF) for tp in range(1, 4) for tn in range(1, 4)
        for sp in range(4) for sn in range(4)]), 1),
    "ternary-W3-acc4-all-floor": (lambda: _ternary_group(3, 4, [
        (tp, tn, sp, sn, lk) for lk in (IF, LIF) for tp in range(1, 4) for tn in range(1, 4)
        for sp in range(4) for sn in range(4)], "floor"), 1),
    # 4-bit membrane: every (θ+, θ−) with the T = 1 shifts σ = ⌈θ/2⌉ (IF, LIF alternating);
    # every (σ+, σ−) at θ = (4, 6) (λ = 1.125)
    "ternary-W4-acc4": (lambda: _ternary_group(4, 4, [
        (tp, tn, _half_up(tp), _half_up(tn), (IF, LIF)[(tp + tn) % 2]) for tp in range(1, 8) for tn in range(1, 8)] + [
        (4, 6, sp, sn, GT1) for sp in range(8) for sn in range(8)]), 1),
    # the lane wiring of the non-spiking-i variant: 3 lanes
    "ternary-W3-acc4-lanes3": (lambda: _ternary_group(3, 4, [
        (1, 3, 0, 2, IF), (3, 1, 3, 1, LIF), (2, 2, 1, 0, HALF), (3, 3, 2, 3, GT1)]), 3),
}


@pytest.mark.parametrize("group", list(GATE_GROUPS))
def test_gate_neurons_exhaustive(group: str) -> None:
    make, lanes = GATE_GROUPS[group]
    compared, bad = _run_gate_neurons(make(), lanes)
    assert not bad, _report(bad)
    assert compared > 0


def test_gate_neurons_exhaustive_fails_on_corrupted_expectation() -> None:
    layers = _binary_group(3, 4, [IF])[:1]
    _, bad = _run_gate_neurons(layers, 2, corrupt=True)
    assert len(bad) == 1 and bad[0].startswith("GateNeurons gate f = BinaryNeuron(theta=1"), bad
    assert bad[0].endswith("lane 0, gates.f for U=0 z=-8: expected 1 got 0"), bad


# ---------------------------------------------------------------------------------------------
# CellUpdate


def _run_cell_update(layers: list[SpikingLayer], lanes: int, corrupt: bool = False) -> tuple[int, list[str]]:
    """Every (s_f, s_o, i, g, c(n−1), U_c(n−1)) on every lane of every layer's CellUpdate.

    i, g range over the values the gates produce: a binary spike {0, 1} or the clip range
    ``[lo, hi]`` for i; a ternary spike {−1, 0, 1} or ``[lo, hi]`` for g. c(n−1) and U_c(n−1)
    over their whole signed registers. Lane k gets the space rotated by k/lanes. Every second
    instance has the debug output ``s_c`` (``trace=True``), which is compared too.
    """
    duts = [CellUpdate(layer, lanes, trace=j % 2 == 1) for j, layer in enumerate(layers)]
    assert all(d.latency == 1 for d in duts)
    first = layers[0]

    def gate_values(gate, ternary: bool) -> range:
        if isinstance(gate, ClipGate):
            return range(gate.lo, gate.hi + 1)
        return range(-1, 2) if ternary else range(2)

    s_f, s_o, i_v, g_v, c_prev, uc_prev = _space(range(2), range(2), gate_values(first.i, False),
                                                 gate_values(first.g, True), _srange(first.cell_bits),
                                                 _srange(first.c.membrane_bits))
    n = len(s_f)
    idx = [_rotation(n, k, lanes) for k in range(lanes)]
    inputs = {
        "gates": {(k, a): arr[idx[k]] for k in range(lanes) for a, arr in (("f", s_f), ("o", s_o), ("i", i_v),
                                                                            ("g", g_v))},
        "c_prev": {(k,): c_prev[idx[k]] for k in range(lanes)},
        "uc_prev": {(k,): uc_prev[idx[k]] for k in range(lanes)},
    }
    expected = []
    for j, layer in enumerate(layers):
        q = arith.spike_select(i_v, g_v) if isinstance(layer.g, ClipGate) else arith.spike_select(g_v, i_v)
        c = arith.cell_update(c_prev, s_f, q, layer.cell_bits)
        nc = layer.c
        s_c, uc = arith.ternary_lif(uc_prev, c, nc.theta_pos, nc.theta_neg, nc.shift_pos, nc.shift_neg, nc.leak,
                                    nc.leak_rounding, nc.membrane_bits)
        h = arith.spike_select(s_o, s_c)
        exp: dict[Key, np.ndarray] = {}
        for k in range(lanes):
            exp[("c", (k,))] = c[idx[k]]
            exp[("uc", (k,))] = uc[idx[k]]
            exp[("h", (k,))] = h[idx[k]]
            if duts[j].has_trace:
                exp[("s_c", (k,))] = s_c[idx[k]]
        expected.append(exp)

    def describe(k: int, key: Key, v: int) -> str:
        port, (lane,) = key
        j = idx[lane][v]
        return (f"CellUpdate(cell_bits={layers[k].cell_bits}, i={layers[k].i}, g={layers[k].g}, c={layers[k].c}) "
                f"lane {lane} {port} for f={int(s_f[j])} o={int(s_o[j])} i={int(i_v[j])} g={int(g_v[j])} "
                f"c_prev={int(c_prev[j])} uc_prev={int(uc_prev[j])}")

    return _check(duts, inputs, expected, 1, describe, corrupt)


def _cell_layers(nonspiking: str, cell_bits: int, q_max: int, mem_bits: int,
                 c_neurons: list[tuple[int, int, int, int, tuple]], rounding: str = "nearest") -> list[SpikingLayer]:
    b = BinaryNeuron(1, IF, 4)
    layers = []
    for tp, tn, sp, sn, lk in c_neurons:
        c = TernaryNeuron(tp, tn, sp, sn, lk, mem_bits, rounding)
        if nonspiking == "g":
            i, g = b, ClipGate(-q_max, q_max)
        else:
            i, g = ClipGate(0, q_max), TernaryNeuron(1, 1, 0, 0, IF, 4)
        layers.append(_layer(b, i, g, b, c, cell_bits, 6))
    return layers


CELL_GROUPS: dict[str, Callable[[], list[SpikingLayer]]] = {
    # non-spiking g = clip(±3), spiking i; c 4 bits, U_c 4 bits (c + σ saturates the membrane)
    "g-clip3-cw4-uc4": lambda: _cell_layers("g", 4, 3, 4, [
        (1, 1, 0, 0, IF), (3, 5, 1, 2, LIF), (7, 7, 3, 3, GT1), (2, 6, 7, 0, HALF)]),
    # non-spiking i = clip(0, 3), ternary g; c 3 bits, U_c 5 bits
    "i-clip3-cw3-uc5": lambda: _cell_layers("i", 3, 3, 5, [
        (1, 1, 0, 0, IF), (4, 2, 1, 1, LIF), (15, 15, 2, 2, GT1), (9, 3, 0, 15, ((1, 0), (-1, 1), (-1, 4)))]),
    # the same with every leak term floored (frozen format 1)
    "i-clip3-cw3-uc5-floor": lambda: _cell_layers("i", 3, 3, 5, [
        (4, 2, 1, 1, LIF), (15, 15, 2, 2, GT1), (9, 3, 0, 15, ((1, 0), (-1, 1), (-1, 4)))], "floor"),
}


@pytest.mark.parametrize("group", list(CELL_GROUPS))
def test_cell_update_exhaustive(group: str) -> None:
    compared, bad = _run_cell_update(CELL_GROUPS[group](), 2)
    assert not bad, _report(bad)
    assert compared > 0


def test_cell_update_exhaustive_fails_on_corrupted_expectation() -> None:
    layers = _cell_layers("g", 3, 1, 3, [(1, 1, 0, 0, IF)])
    _, bad = _run_cell_update(layers, 2, corrupt=True)
    assert len(bad) == 1 and bad[0].startswith("CellUpdate(cell_bits=3"), bad
    assert bad[0].endswith("lane 0 c for f=1 o=0 i=0 g=-1 c_prev=-4 uc_prev=-4: expected -3 got -4"), bad

"""Multiplier-free leak ``λ·U := Σ_k sign_k·(U / 2^e_k)`` and the saturating/clipping helpers.

The leak is the contract's ``arith.leak``: each term is an arithmetic right shift of the
membrane — rounded to nearest by adding the last bit shifted out (an adder's carry-in), or
floored — added or subtracted; no multiplier. :class:`LeakUnit` is the block; the module
functions build the same combinational expressions inside larger blocks (neuron lanes, cell
update) so that every neuron uses one implementation.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from snnhw.quant.arith import (
    LeakRounding,
    LeakTerms,
    signed_bits,
    signed_range,
    validate_leak_rounding,
    validate_leak_terms,
)


def leak_bits(terms: LeakTerms, in_bits: int) -> int:
    """Signed width of ``leak(U)`` for a signed ``in_bits`` membrane: ``|Σ| ≤ K·2^(in_bits−1)``
    (a rounded term ``(U >> e) + U[e−1]``, e ≥ 1, lies in ``[−2^(in_bits−1−e), 2^(in_bits−1−e)]``)."""
    lo, hi = signed_range(in_bits)
    bound = len(terms) * max(-lo, hi)
    return signed_bits(-bound, bound)


def _shift_and_carry(u: Value, e: int, rounding: LeakRounding) -> tuple[Value, Value | None]:
    """``(u >> e, c)`` with ``arith.rounding_shift(u, e) = (u >> e) + c``: ``c`` is the last bit
    shifted out ``u[e−1]`` (the sign beyond the top bit) when rounding to nearest and e ≥ 1,
    else None (``>>`` on signed Values floors)."""
    u = u.as_signed()
    if validate_leak_rounding(rounding) == "nearest" and e > 0:
        return u >> e, u[min(e, len(u)) - 1]
    return u >> e, None


def leak_expr(u: Value, terms: LeakTerms, rounding: LeakRounding) -> Value:
    """Combinational ``Σ sign·rounding_shift(u, e)`` of a signed value (``arith.leak``).

    A rounded term is ``(u >> e) + c`` with ``c`` one bit: added as ``+ (u >> e) + c`` and
    subtracted as ``+ ~(u >> e) + ~c`` (−x = ~x + 1, so ``−((u >> e) + c) = ~(u >> e) + (1 − c)``).
    Either way ``c`` is a one-bit addend, which synthesis puts on the carry-in of the leak's
    adder: written as ``− ((u >> e) + c)``, Yosys builds the inner sum in LUTs instead (measured
    on ``synth_xilinx``: 32 LUTs against 16 for a 16-bit λ = 7/8; as written here, 15).
    """
    addends: list[Value] = []
    negated: list[Value] = []
    for sign, e in terms:
        shifted, carry = _shift_and_carry(u, e, rounding)
        if carry is None:
            (addends if sign > 0 else negated).append(shifted)
        elif sign > 0:
            addends += [shifted, carry]
        else:
            addends += [~shifted, ~carry]
    total: Value | None = None
    for value in addends:
        total = value if total is None else total + value
    for value in negated:
        total = -value if total is None else total - value
    assert total is not None
    return total


def node(m: Module, value: Value, name: str = "node") -> Signal:
    """A combinational signal carrying ``value``: shares one expression among several uses.

    The RTLIL backend emits every use of a Python ``Value`` tree again; naming intermediate
    results keeps the netlist linear in the datapath depth.
    """
    sig = Signal(Value.cast(value).shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig


def delayed(m: Module, value: Value, name: str) -> Signal:
    """``value`` one cycle later: a pipeline register named ``name`` of ``value``'s shape (a view
    keeps its layout)."""
    reg = Signal.like(value, name=name)
    m.d.sync += reg.eq(value)
    return reg


def saturate_expr(m: Module, x: Value, bits: int) -> Signal:
    """``sat_bits(x)``: clamp a signed value to the signed ``bits``-bit range (contract ``saturate``).

    The range tests read the bits of ``x`` instead of comparing: ``x`` (signed, W bits) is above
    the range when it is non-negative and one of its bits ``bits−1 .. W−2`` is set, below it when
    negative and not all of them are set — a few LUTs after the carry chain that computes ``x``,
    where ``x > hi`` and ``x < lo`` would each add a carry chain of their own to the path.
    """
    lo, hi = signed_range(bits)
    x = node(m, x, "sat_in")
    if not x.shape().signed:  # a zero sign bit on top: the same value, signed
        x = node(m, Cat(x, Const(0, 1)).as_signed(), "sat_in_signed")
    width = len(x)
    if width <= bits:  # nothing to clamp: x already lies in the range
        return node(m, x.as_signed(), "sat")
    sign, upper = x[width - 1], x[bits - 1:width - 1]
    above, below = ~sign & upper.any(), sign & ~upper.all()
    return node(m, Mux(above, Const(hi, signed(bits)), Mux(below, Const(lo, signed(bits)), x)), "sat")


def clip_expr(m: Module, x: Value, lo: int | Value, hi: int | Value, shape: Shape | None = None) -> Signal:
    """``clip(x, lo, hi)`` on a signed value (contract ``clip``); the bounds are integers or
    values (a constant memory's reads). ``shape``: the result's, by default the smallest signed
    shape holding integer bounds (required with value bounds)."""
    if shape is None:
        if not isinstance(lo, int) or not isinstance(hi, int):
            raise TypeError("clip_expr needs a shape when its bounds are values")
        shape = Shape(signed_bits(min(lo, 0), max(hi, 0)), True)
    x = node(m, x, "clip_in")
    out = Signal(shape, name="clip")
    m.d.comb += out.eq(Mux(x > hi, hi, Mux(x < lo, lo, x)))
    return out


class LeakUnit(wiring.Component):
    """Combinational leak of one membrane: ``y = Σ_k sign_k·(u / 2^e_k)`` (``arith.leak``).

    Parameters:
        terms: leak shift terms ``((sign, e), ...)`` (validated by ``arith.validate_leak_terms``).
        in_bits: signed width of the membrane ``u`` (≥ 2).
        rounding: "nearest" or "floor" (:data:`snnhw.quant.arith.LeakRounding`).

    Ports:
        u: In(signed(in_bits)), the membrane.
        y: Out(signed(out_bits)), the leaked membrane, ``out_bits = leak_bits(terms, in_bits)``.
    """

    def __init__(self, terms: LeakTerms, in_bits: int, rounding: LeakRounding) -> None:
        self.terms = validate_leak_terms(terms)
        self.rounding = validate_leak_rounding(rounding)
        if not isinstance(in_bits, int) or in_bits < 2:
            raise ValueError(f"LeakUnit in_bits must be an integer ≥ 2, not {in_bits!r}")
        self.in_bits = in_bits
        self.out_bits = leak_bits(self.terms, in_bits)
        super().__init__({"u": In(signed(in_bits)), "y": Out(signed(self.out_bits))})

    @property
    def latency(self) -> int:
        """Cycles from ``u`` to ``y``: 0 (purely combinational shifts and adds)."""
        return 0

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(leak_expr(self.u, self.terms, self.rounding))
        return m

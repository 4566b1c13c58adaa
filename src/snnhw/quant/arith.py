"""Integer primitives of the bit-exact contract (``docs/integer-contract.md``).

This module and :mod:`snnhw.quant.golden` (which composes these primitives into the layer and
network golden models) are the only places where snnhw's integer semantics are written down.
The quantizer, the hardware generators' tests, the cocotb testbenches and the reports call
these functions; none of them re-implements a rule.

Every function works elementwise on Python ``int`` or on NumPy ``int64`` arrays (broadcasting),
and never uses floats. ``>>`` on ``int64`` is an arithmetic (flooring) shift. Widths are in
bits; a signed ``W``-bit register holds ``[-2**(W-1), 2**(W-1) - 1]``.
"""

from __future__ import annotations

from typing import Literal, Sequence, TypeVar

import numpy as np

IntLike = TypeVar("IntLike", int, np.ndarray)

LeakTerms = tuple[tuple[int, int], ...]
"""A leak factor as signed shift terms ``((sign, e), ...)``: λ·U := Σ sign·(U / 2^e), each
quotient rounded by the neuron's :data:`LeakRounding` (:func:`leak`).

``sign`` is +1 or −1 and ``e`` ≥ 0. λ = 1 is ``((1, 0),)``; λ = 7/8 is ``((1, 0), (-1, 3))``;
λ = 1.125 is ``((1, 0), (1, 3))``.
"""

LeakRounding = Literal["nearest", "floor"]
"""How each leak term's shift ``U >> e`` rounds: "nearest" (half up, the default since frozen
format 2) or "floor" (an arithmetic shift, the rule of frozen format 1)."""

LEAK_ROUNDINGS: tuple[LeakRounding, ...] = ("nearest", "floor")

DEFAULT_LEAK_ROUNDING: LeakRounding = "nearest"
"""The rounding the quantizer writes and a neuron has unless told otherwise."""

LEAK_MAX_SHIFT = 15
"""Largest shift exponent a leak term may use (a 4-bit field in hardware)."""

XORSHIFT_MASK = 0xFFFF_FFFF


def signed_range(bits: int) -> tuple[int, int]:
    """The inclusive range ``(lo, hi)`` of a signed two's-complement register of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def signed_bits(lo: int, hi: int) -> int:
    """Smallest signed width (bits, ≥ 1) whose range contains the integers ``lo..hi``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def saturate(x: IntLike, bits: int) -> IntLike:
    """Clamp ``x`` to the range of a signed ``bits``-bit register (the state registers' rule)."""
    lo, hi = signed_range(bits)
    if isinstance(x, np.ndarray):
        return np.clip(x, lo, hi)
    return min(max(x, lo), hi)


def clip(x: IntLike, lo: int, hi: int) -> IntLike:
    """Clamp ``x`` to ``[lo, hi]`` (hard sigmoid / hard tanh and non-spiking gates)."""
    if isinstance(x, np.ndarray):
        return np.clip(x, lo, hi)
    return min(max(x, lo), hi)


def rounding_shift(u: IntLike, e: int, rounding: LeakRounding) -> IntLike:
    """``u / 2^e`` as an integer: ``u >> e`` ("floor") or ``(u + 2^(e−1)) >> e`` ("nearest",
    halves up; the same as ``(u >> e) + bit e−1 of u``, the last bit shifted out as a carry-in)."""
    if validate_leak_rounding(rounding) == "nearest" and e > 0:
        return (u + (1 << (e - 1))) >> e
    return u >> e


def leak(u: IntLike, terms: LeakTerms, rounding: LeakRounding) -> IntLike:
    """The multiplier-free leak ``Σ sign·rounding_shift(u, e)`` (each term rounded on its own)."""
    total = 0 * u
    for sign, e in terms:
        total = total + sign * rounding_shift(u, e, rounding)
    return total


def leak_value(terms: LeakTerms) -> float:
    """The real factor λ = Σ sign·2^−e that ``terms`` approximates (for reports only)."""
    return float(sum(sign * 2.0**-e for sign, e in terms))


def validate_leak_rounding(rounding: object) -> LeakRounding:
    """Check a leak rounding name and return it; raises ``ValueError`` when it is not one of
    :data:`LEAK_ROUNDINGS`."""
    if rounding not in LEAK_ROUNDINGS:
        raise ValueError(f"unknown leak rounding {rounding!r}; use one of {', '.join(LEAK_ROUNDINGS)}")
    return rounding  # type: ignore[return-value]


def validate_leak_terms(terms: Sequence[Sequence[int]]) -> LeakTerms:
    """Check a leak description and return it as a tuple; raises ``ValueError`` when invalid."""
    out: list[tuple[int, int]] = []
    if not terms:
        raise ValueError("a leak needs at least one shift term")
    for term in terms:
        if len(term) != 2:
            raise ValueError(f"leak term {term!r} is not a (sign, shift) pair")
        sign, e = int(term[0]), int(term[1])
        if sign not in (1, -1) or not 0 <= e <= LEAK_MAX_SHIFT:
            raise ValueError(f"leak term {term!r}: sign must be ±1 and shift in 0..{LEAK_MAX_SHIFT}")
        out.append((sign, e))
    return tuple(out)


def binary_lif(u_prev: IntLike, z: IntLike, theta: int, terms: LeakTerms, rounding: LeakRounding,
               bits: int) -> tuple[IntLike, IntLike]:
    """One time step of the binary LIF neuron (sigmoid-type gates f, o and spiking i).

    ``v = saturate(leak(u_prev, terms, rounding) + z, bits)``; spike ``s = [v > theta]``; soft reset
    ``u = v − theta·s``. Returns ``(s, u)`` with ``s`` in {0, 1}.
    """
    v = saturate(leak(u_prev, terms, rounding) + z, bits)
    s = (v > theta) * 1
    return s, v - theta * s


def ternary_input_shift(y: IntLike, shift_pos: int, shift_neg: int) -> IntLike:
    """The paper's sign-dependent shift of a ternary neuron's input: +σ+ if y > 0, −σ− if y < 0."""
    return y + shift_pos * (y > 0) - shift_neg * (y < 0)


def ternary_lif(
    u_prev: IntLike,
    y: IntLike,
    theta_pos: int,
    theta_neg: int,
    shift_pos: int,
    shift_neg: int,
    terms: LeakTerms,
    rounding: LeakRounding,
    bits: int,
) -> tuple[IntLike, IntLike]:
    """One time step of the ternary LIF neuron (spiking g, and the activation of c).

    ``v = saturate(leak(u_prev, terms, rounding) + ternary_input_shift(y), bits)``; ``s = +1`` if ``v > θ+``,
    ``−1`` if ``v < −θ−``, else 0; reset ``u = v − θ+`` (s = +1) or ``v + θ−`` (s = −1).
    Returns ``(s, u)`` with ``s`` in {−1, 0, 1}.
    """
    v = saturate(leak(u_prev, terms, rounding) + ternary_input_shift(y, shift_pos, shift_neg), bits)
    pos = (v > theta_pos) * 1
    neg = (v < -theta_neg) * 1
    return pos - neg, v - theta_pos * pos + theta_neg * neg


def spike_select(s: IntLike, value: IntLike) -> IntLike:
    """The product of a spike ``s`` ∈ {−1, 0, 1} and a multi-bit value: a mux / negate, no multiply."""
    return (s > 0) * value - (s < 0) * value


def cell_update(c_prev: IntLike, s_f: IntLike, q: IntLike, bits: int) -> IntLike:
    """Spiking cell state ``c = saturate(s_f ? c_prev : 0) + q, bits)``; ``q`` is the i·g product."""
    return saturate(spike_select(s_f, c_prev) + q, bits)


def xorshift32(state: IntLike) -> IntLike:
    """One step of the rate encoder's generator (Marsaglia xorshift32: 13, 17, 5) on uint32 values.

    A linear feedback shift register over GF(2); the hardware encoder implements the same
    three XOR-shift stages. ``state`` must be non-zero (zero is a fixed point).
    """
    s = state ^ ((state << 13) & XORSHIFT_MASK)
    s = s ^ (s >> 17)
    return s ^ ((s << 5) & XORSHIFT_MASK)


def rate_spikes(x_q: np.ndarray, states: np.ndarray, T: int, rate_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Rate-encode one sequence element over ``T`` time steps with per-feature xorshift32 generators.

    Args:
        x_q: int64 [..., D], the element's rate-quantized input, |x_q| ≤ 2**rate_bits − 1.
        states: int64 [..., D], generator states (non-zero uint32 values) before this element.
        T: time steps per element.
        rate_bits: R, bits of the comparison.

    For t = 1..T every generator steps once; ``r = state >> (32 − R)`` (top R bits);
    ``u[t] = sign(x_q)`` where ``r < |x_q|``, else 0. Returns (spikes int64 [..., T, D] in
    {−1, 0, 1}, states after the element).
    """
    spikes = []
    mag = np.abs(x_q)
    sign = np.sign(x_q)
    for _ in range(T):
        states = xorshift32(states)
        spikes.append(sign * ((states >> (32 - rate_bits)) < mag))
    return np.stack(spikes, axis=-2).astype(np.int64), states


def round_half_up(x: np.ndarray) -> np.ndarray:
    """``floor(x + 1/2)`` as int64: the one rounding rule used when floats become integers."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def quantize_direct_input(x: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """Direct-encoding input: ``saturate(round_half_up(x / scale), bits)`` (signed ``bits`` bits).

    ``x`` is the normalised float feature array; ``scale`` the input unit α_x.
    """
    return saturate(round_half_up(np.asarray(x, dtype=np.float64) / scale), bits)


def quantize_rate_input(x: np.ndarray, rate_bits: int) -> np.ndarray:
    """Rate-encoding input: ``sign(x)·min(round_half_up(|x|·2^R), 2^R − 1)`` (signed R+1 bits)."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.minimum(round_half_up(np.abs(x) * (1 << rate_bits)), (1 << rate_bits) - 1)
    return (np.sign(x).astype(np.int64) * mag).astype(np.int64)


def scaled(z: IntLike, multiplier: int, shift: int, offset: int) -> IntLike:
    """A baseline activation before its clip: ``((z·M) >> S) + offset``."""
    return ((z * multiplier) >> shift) + offset


def scaled_clip(z: IntLike, multiplier: int, shift: int, offset: int, lo: int, hi: int) -> IntLike:
    """Baseline activation ``clip(((z·M) >> S) + offset, lo, hi)`` (a constant multiply, MAC core only)."""
    return clip(scaled(z, multiplier, shift, offset), lo, hi)


def sign_scaled(z: IntLike, m_pos: int, m_neg: int, shift: int) -> IntLike:
    """A baseline hard tanh before its clip: ``(z·M) >> S``, ``M = m_pos`` for z ≥ 0, ``m_neg`` for z < 0."""
    if isinstance(z, np.ndarray):
        m = np.where(z >= 0, m_pos, m_neg)
    else:
        m = m_pos if z >= 0 else m_neg
    return (z * m) >> shift


def sign_scaled_clip(z: IntLike, m_pos: int, m_neg: int, shift: int, lo: int, hi: int) -> IntLike:
    """Baseline hard tanh with two thresholds: multiplier ``m_pos`` for z ≥ 0, ``m_neg`` for z < 0."""
    return clip(sign_scaled(z, m_pos, m_neg, shift), lo, hi)


def baseline_cell(f: IntLike, c_prev: IntLike, i: IntLike, g: IntLike, frac_bits: int, bits: int) -> IntLike:
    """Baseline cell state ``saturate((f·c_prev + i·g) >> q, bits)`` (all in units of 2^−q)."""
    return saturate((f * c_prev + i * g) >> frac_bits, bits)


def baseline_hidden(o: IntLike, tanh_c: IntLike, frac_bits: int) -> IntLike:
    """Baseline hidden state ``(o·tanh_c) >> q`` (unit 2^−q)."""
    return (o * tanh_c) >> frac_bits


def argmax_first(logits: np.ndarray) -> np.ndarray:
    """Class decision: index of the largest logit, the lowest index on ties (what the RTL does)."""
    return np.argmax(logits, axis=-1)

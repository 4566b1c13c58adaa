"""Edges of the integer contract that an outside implementation trips on (``docs/integer-contract.md``).

* Rate codes: the input lane is signed R+1 bits, but only ``|x_q| ≤ 2^R − 1`` is a rate code.
  −2^R fits the lane, yet the golden model refuses it (the hardware encoder does not define it),
  while −2^R + 1 is the most negative valid code.
* Widths of intermediate sums stated in §5: the pre-shift direct-input MAC and the membrane
  sum ``leak(U) + z`` before saturation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from snnhw.errors import UserError
from snnhw.quant import arith, bounds, golden, synthetic

R = 3


@pytest.fixture(scope="module")
def rate_model():
    return synthetic.random_frozen_spiking(11, input_size=3, hidden_size=4, T=5, encoding="rate", rate_bits=R)


def _codes(first: int) -> np.ndarray:
    """One sample, two elements, D = 3: ``first`` in feature 0, ordinary codes elsewhere."""
    return np.array([[[first, 2, -1], [0, 2 ** R - 1, 1]]], dtype=np.int64)


@pytest.mark.parametrize("bad", [-(1 << R), 1 << R])
def test_golden_rejects_codes_outside_the_rate_range(rate_model, bad: int) -> None:
    x = _codes(bad)
    top = (1 << R) - 1
    with pytest.raises(UserError, match=rf"x_q values must lie in \[{-top}, {top}\]"):
        golden.run_spiking(rate_model, x)
    with pytest.raises(UserError, match=rf"rate-coded x_q values must lie in \[{-top}, {top}\]"):
        golden.rate_encode(rate_model, x)


def test_most_negative_valid_rate_code_is_accepted(rate_model) -> None:
    low = -(1 << R) + 1
    x = _codes(low)
    spikes = golden.rate_encode(rate_model, x)
    assert set(np.unique(spikes[0, :, :, 0])) <= {-1, 0}
    # exactly the contract's encoder rule, element by element from the seeds
    states = np.asarray(rate_model.lfsr_seeds, dtype=np.int64)
    for n in range(x.shape[1]):
        u, states = arith.rate_spikes(x[0, n], states, rate_model.T, R)
        assert np.array_equal(spikes[0, n], u)
    result = golden.run_spiking(rate_model, x)
    assert np.array_equal(result.readout, golden.run_spiking(rate_model, None, spikes_in=spikes).readout)


def test_spike_input_code_minus_two_is_rejected(rate_model) -> None:
    spikes = np.zeros((1, 1, rate_model.T, rate_model.input_size), dtype=np.int64)
    spikes[0, 0, 0, 0] = -2  # the 2-bit lane code 10
    with pytest.raises(UserError, match=r"spikes_in values must lie in \[-1, 1\]"):
        golden.run_spiking(rate_model, None, spikes_in=spikes)


def test_direct_mac_reaches_its_bound_before_the_shift() -> None:
    model = synthetic.random_frozen_spiking(12, input_size=5, hidden_size=3, T=2, encoding="direct")
    layer = model.layers[0]
    bound = bounds.direct_mac_bound(layer.w_x, model.input_bits)
    row = int(np.argmax(np.abs(layer.w_x).sum(axis=1)))
    # x_q = −2^(b−1)·sign(w): the pre-shift sum is exactly −bound
    x_q = -(1 << (model.input_bits - 1)) * np.sign(layer.w_x[row])
    mac = int(layer.w_x[row] @ x_q)
    assert mac == -bound
    shift = layer.x_shift[row // layer.hidden_size]
    assert golden.input_projection(layer, x_q[None])[0, row] == mac >> shift


@pytest.mark.parametrize("W", [3, 5])
def test_membrane_sum_bound(W: int) -> None:
    """|leak(U) + z| ≤ K·2^(W−1) + 2^(acc−1) − 1 fits max(W + ⌈log2 K⌉ + 1, acc + 1) signed bits."""
    lo, hi = arith.signed_range(W)
    for K in (1, 2, 3):
        for terms in itertools.combinations([(s, e) for e in range(3) for s in (1, -1)], K):
            if len({e for _, e in terms}) < K:
                continue
            worst = max(abs(arith.leak(u, terms, r)) for u in range(lo, hi + 1) for r in arith.LEAK_ROUNDINGS)
            assert worst <= K << (W - 1)
            for acc in (2, W, W + 3):
                bound = (K << (W - 1)) + (1 << (acc - 1)) - 1
                width = max(W + (K - 1).bit_length() + 1, acc + 1)
                assert arith.signed_bits(-bound, bound) <= width


def test_rounding_shift_is_round_half_up_and_the_carry_in_form() -> None:
    """``rounding_shift(u, e, "nearest")`` is ⌊u/2^e + 1/2⌋ (exact rationals), equals the
    hardware's ``(u >> e) + bit e−1 of u`` (the bit taken from the sign beyond a W-bit value's
    top), and "floor" is ⌊u/2^e⌋; over every 6-bit u and e = 0..8, as ints and as an array."""
    from fractions import Fraction
    import math

    us = range(-32, 32)
    for e in range(9):
        for u in us:
            exact = Fraction(u, 1 << e)
            assert arith.rounding_shift(u, e, "nearest") == math.floor(exact + Fraction(1, 2))
            assert arith.rounding_shift(u, e, "floor") == math.floor(exact)
            carry = (u >> min(e, 6) - 1) & 1 if e else 0
            assert arith.rounding_shift(u, e, "nearest") == (u >> e) + carry
        array = np.arange(-32, 32, dtype=np.int64)
        assert arith.rounding_shift(array, e, "nearest").tolist() == [arith.rounding_shift(u, e, "nearest") for u in us]
    with pytest.raises(ValueError, match="unknown leak rounding"):
        arith.rounding_shift(5, 1, "ceil")
    with pytest.raises(ValueError, match="unknown leak rounding"):
        arith.leak(5, ((1, 0),), "ceil")

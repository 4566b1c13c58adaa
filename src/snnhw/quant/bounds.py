"""Worst-case magnitude bounds that size the integer registers of the frozen models.

Shared by the quantizer (which derives every width from these bounds) and by the frozen-file
loader (which re-checks that a file's declared widths really hold its own weights). All
bounds are exact integer upper bounds on ``|value|`` in the register's unit, computed with
Python integers (no overflow). Widths are signed bits (:func:`snnhw.quant.arith.signed_bits`).
"""

from __future__ import annotations

import numpy as np

from snnhw.quant.arith import LeakTerms, signed_bits


def _row_abs_sum(w: np.ndarray) -> np.ndarray:
    """Σ_k |w[row, k]| per row, as a Python-int object array (exact)."""
    return np.abs(w.astype(object)).sum(axis=1) if w.shape[1] else np.zeros(w.shape[0], dtype=object)


def direct_mac_bound(w_x: np.ndarray, input_bits: int) -> int:
    """Largest ``|Σ_d w_x[r, d]·x_q[d]|`` over rows for a signed ``input_bits`` input (pre-shift MAC)."""
    x_max = 1 << (input_bits - 1)
    return int(max(_row_abs_sum(w_x))) * x_max if w_x.size else 0


def projection_bound(w_x: np.ndarray, x_shift: tuple[int, ...], in_max: int, direct: bool) -> np.ndarray:
    """Per row, the bound of the layer input's contribution to z.

    ``direct``: ``|(Σ w·x_q) >> x_shift[gate]| ≤ ceil(Σ|w|·in_max / 2^x_shift)`` (floor of a
    negative sum rounds away from 0). Otherwise (spikes or multi-bit h, no shift):
    ``Σ|w|·in_max``. Rows are stacked by gate in blocks of ``w_x.shape[0] // 4``.
    """
    sums = _row_abs_sum(w_x) * in_max
    if not direct:
        return sums
    h = w_x.shape[0] // 4
    out = np.empty_like(sums)
    for a in range(4):
        s = 1 << int(x_shift[a])
        out[a * h:(a + 1) * h] = [-((-int(v)) // s) for v in sums[a * h:(a + 1) * h]]
    return out


def z_bound(w_x: np.ndarray, w_h: np.ndarray, bias: np.ndarray, x_shift: tuple[int, ...],
            in_max: int, h_max: int, direct: bool) -> int:
    """Largest |z| of any gate row: input projection + ``Σ|w_h|·h_max`` + ``|b|``."""
    rows = projection_bound(w_x, x_shift, in_max, direct) + _row_abs_sum(w_h) * h_max \
        + np.abs(bias.astype(object))
    return int(max(rows)) if rows.size else 0


def acc_bits_for(w_x: np.ndarray, w_h: np.ndarray, bias: np.ndarray, x_shift: tuple[int, ...],
                 in_max: int, h_max: int, direct: bool) -> int:
    """Signed width of the gate pre-activation register: holds every z (see :func:`z_bound`).

    The pre-shift MAC of a direct-input layer may be wider; its bound is
    :func:`direct_mac_bound` (hardware sizes that adder from it).
    """
    bound = z_bound(w_x, w_h, bias, x_shift, in_max, h_max, direct)
    return signed_bits(-bound, bound)


def membrane_bound(input_max: int, terms: LeakTerms, T: int) -> int:
    """Largest |v| a LIF membrane can reach in ``T`` steps from U = 0 with inputs ``|y'| ≤ input_max``.

    Recursion ``M_t = Σ_k (M_{t−1} >> e_k) + K + input_max`` (each term, floored or rounded to
    nearest, is at most ``(|U| >> e) + 1`` in magnitude; the soft reset never increases |U|);
    returns ``M_T``. The membrane resets to 0 at every new sequence element, so ``T`` steps are
    the whole history.
    """
    m = 0
    for _ in range(T):
        m = sum((m >> e) + 1 for _, e in terms) + input_max
    return m


def membrane_bits_for(input_max: int, terms: LeakTerms, T: int, thresholds: tuple[int, ...]) -> int:
    """Signed width holding :func:`membrane_bound` and every threshold (no saturation possible)."""
    bound = max(membrane_bound(input_max, terms, T), *thresholds)
    return signed_bits(-bound, bound)


def cell_bound(n_max: int, q_max: int) -> int:
    """``|c| ≤ N_max·q_max``: c adds at most one ``|q| ≤ q_max`` per element (spiking cell)."""
    return n_max * q_max


__all__ = ["direct_mac_bound", "projection_bound", "z_bound", "acc_bits_for", "membrane_bound",
           "membrane_bits_for", "cell_bound"]

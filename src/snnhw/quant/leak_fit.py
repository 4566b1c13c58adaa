"""Fit a trained leak factor λ to the multiplier-free shift form of the integer contract.

The golden model and the hardware compute ``leak(U) = Σ_k sign_k·(U / 2^e_k)``, each quotient
rounded to an integer (:func:`snnhw.quant.arith.leak`), i.e. λ is approximated by a sum of at most ``K`` signed
powers of two ``±2^−e`` with distinct exponents ``e`` in ``0..LEAK_MAX_SHIFT`` (15). With
distinct exponents such a sum is a signed-digit number; the fit below enumerates every
such sum exhaustively and returns the one closest to λ, so it is optimal, not greedy.

Ties (equal |error|) go to the fewer terms, then to the value not above λ (a leak that errs
towards forgetting cannot make the membrane grow), then to the lexicographically smallest
``(e, sign)`` list — the result is deterministic. Every λ ≥ 2^−15 can be approximated;
λ = 1 gives ``((1, 0),)``, λ = 7/8 gives ``((1, 0), (-1, 3))``, λ = 1.125 ``((1, 0), (1, 3))``.
λ > 1 works the same way (largest value with K = 2: 1.5).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

from snnhw.errors import UserError
from snnhw.quant.arith import LEAK_MAX_SHIFT, LeakTerms, leak_value, validate_leak_terms

MAX_LEAK_TERMS = 4
"""Largest number of shift terms :func:`fit_leak` searches (4 terms: 2^4·C(16,4) candidates)."""


@lru_cache(maxsize=None)
def _candidates(max_terms: int) -> tuple[np.ndarray, list[LeakTerms]]:
    """All signed-digit leaks with 1..``max_terms`` distinct exponents: (values, terms) sorted."""
    values: list[float] = []
    terms: list[LeakTerms] = []
    exponents = range(LEAK_MAX_SHIFT + 1)
    for k in range(1, max_terms + 1):
        for es in itertools.combinations(exponents, k):
            for signs in itertools.product((1, -1), repeat=k):
                t = tuple(zip(signs, es))
                values.append(leak_value(t))
                terms.append(t)
    return np.asarray(values, dtype=np.float64), terms


def fit_leak(lam: float, max_terms: int = 2) -> LeakTerms:
    """The closest leak ``Σ sign·2^−e`` to ``lam`` with at most ``max_terms`` terms.

    Args:
        lam: the trained leak factor λ (dimensionless, > 0; λ = 1 is the IF neuron).
        max_terms: K, 1..:data:`MAX_LEAK_TERMS` shift terms (one adder/subtractor per extra term).

    Returns:
        Validated :data:`~snnhw.quant.arith.LeakTerms` ordered by increasing shift.

    Raises:
        UserError: λ is not a finite positive number or K is out of range.
    """
    if not 1 <= max_terms <= MAX_LEAK_TERMS:
        raise UserError(f"leak terms must be in 1..{MAX_LEAK_TERMS}, got {max_terms}")
    lam = float(lam)
    if not math.isfinite(lam) or lam <= 0.0:
        raise UserError(f"leak factor λ must be a finite positive number, got {lam}")
    values, terms = _candidates(max_terms)
    err = np.abs(values - lam)
    best = float(err.min())
    tied = [terms[j] for j in np.flatnonzero(err == best)]
    tied.sort(key=lambda t: (len(t), leak_value(t) > lam, [(e, s) for s, e in t]))
    return validate_leak_terms(tied[0])


__all__ = ["fit_leak", "MAX_LEAK_TERMS"]

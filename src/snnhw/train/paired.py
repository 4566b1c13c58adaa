"""Paired comparison of two classifiers on the same split: how far apart they are, and how sure.

Two models evaluated on the same sequences differ only where they decide differently. Of the
``n`` sequences, ``only_a`` are right under model A and wrong under B, ``only_b`` the reverse;
the accuracy difference A − B is ``(only_a − only_b) / n``. Whether that difference is more than
chance is McNemar's question (McNemar 1947, Psychometrika 12:153–157): under "both models are
equally accurate" each discordant sequence is a fair coin, so the exact two-sided p-value is
``min(1, 2·P[Binomial(only_a + only_b, ½) ≤ min(only_a, only_b)])``. The 95 % interval of the
difference is Agresti and Min's adjusted Wald interval for paired proportions (Statistics in
Medicine 24:729–740, 2005): add ½ to each of the four cells of the 2 × 2 table, then
``d* ± z·√((p₁* + p₂*) − d*²) / √(n + 2)`` with ``p₁* = (only_a + ½)/(n + 2)``,
``p₂* = (only_b + ½)/(n + 2)``, ``d* = p₁* − p₂*``. Unlike the plain Wald interval it does not
collapse to a point when the two models never disagree (with n = 300 and no disagreement it is
±0.65 points), and for counts like HAR's it is the Wald interval to within 0.01 points.

On a fixed test split this sets a model comparison's resolution: with about 100 discordant
sequences among 2,996 (HAR), the 95 % interval is about ±0.65 points (``docs/results.md``, "One
model against another: the resolution of the test split").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from snnhw.errors import UserError

Z_95 = 1.959963984540054
"""The two-sided 95 % standard-normal quantile."""


@dataclass(frozen=True)
class PairedComparison:
    """Counts of two models' decisions on the same ``n`` sequences (A: the model, B: the reference).

    Attributes:
        n: sequences compared.
        correct_a, correct_b: sequences each model classifies correctly.
        only_a: right under A, wrong under B; ``only_b``: the reverse.
        changed: sequences whose class differs between A and B (≥ only_a + only_b: both may be wrong).
    """

    n: int
    correct_a: int
    correct_b: int
    only_a: int
    only_b: int
    changed: int

    @property
    def difference(self) -> float:
        """Accuracy of A minus accuracy of B, in percentage points."""
        return 100.0 * (self.only_a - self.only_b) / self.n

    @property
    def interval95(self) -> tuple[float, float]:
        """The 95 % interval of :attr:`difference` (percentage points; Agresti–Min, see the module)."""
        m = self.n + 2
        p1, p2 = (self.only_a + 0.5) / m, (self.only_b + 0.5) / m
        d = p1 - p2
        half = Z_95 * math.sqrt((p1 + p2 - d * d) / m)
        return 100.0 * (d - half), 100.0 * (d + half)

    @property
    def p_value(self) -> float:
        """McNemar's exact two-sided p-value for "A and B are equally accurate"."""
        return mcnemar_exact_p(self.only_a, self.only_b)

    def to_dict(self) -> dict[str, float | int | list[float]]:
        """The counts and derived figures, for JSON records (differences in points)."""
        lo, hi = self.interval95
        return {"n": self.n, "correct": self.correct_a, "reference_correct": self.correct_b,
                "only_model_right": self.only_a, "only_reference_right": self.only_b, "changed": self.changed,
                "difference_points": self.difference, "interval95_points": [lo, hi], "mcnemar_p": self.p_value}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> PairedComparison:
        """The comparison whose counts a :meth:`to_dict` record holds (derived figures recomputed)."""
        return cls(n=int(record["n"]), correct_a=int(record["correct"]), correct_b=int(record["reference_correct"]),
                   only_a=int(record["only_model_right"]), only_b=int(record["only_reference_right"]),
                   changed=int(record["changed"]))

    def summary(self) -> str:
        """One line: difference, its interval, the discordant counts and the p-value."""
        lo, hi = self.interval95
        return (f"difference {self.difference:+.2f} points (95 % interval {lo:+.2f} to {hi:+.2f}); "
                f"{self.changed} of {self.n} decided differently, right only under the model {self.only_a}, "
                f"only under the reference {self.only_b}; McNemar exact p = {self.p_value:.3g}")


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value of ``only_a`` against ``only_b`` discordant pairs (1 when none)."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be ≥ 0, got {only_a} and {only_b}")
    m = only_a + only_b
    tail = sum(math.comb(m, k) for k in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2 ** m)


def compare_decisions(classes_a: np.ndarray, classes_b: np.ndarray, labels: np.ndarray) -> PairedComparison:
    """Compare two models' classes (int [S] each) on sequences with true ``labels`` (int [S])."""
    a, b, y = (np.asarray(v).reshape(-1) for v in (classes_a, classes_b, labels))
    if not (a.shape == b.shape == y.shape):
        raise UserError(f"cannot compare decisions on {a.size}, {b.size} and {y.size} sequences")
    if y.size == 0:
        raise UserError("cannot compare two models on an empty split")
    right_a, right_b = a == y, b == y
    return PairedComparison(n=int(y.size), correct_a=int(right_a.sum()), correct_b=int(right_b.sum()),
                            only_a=int((right_a & ~right_b).sum()), only_b=int((right_b & ~right_a).sum()),
                            changed=int((a != b).sum()))

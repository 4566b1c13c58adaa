"""Paired comparison of two classifiers (:mod:`snnhw.train.paired`): counts, McNemar's exact
p-value and the Wald interval, against figures worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from snnhw.errors import UserError
from snnhw.train.paired import PairedComparison, compare_decisions, mcnemar_exact_p


def test_mcnemar_exact_p_matches_the_binomial_tail_by_hand() -> None:
    # 10 against 2 discordant pairs: 2·(C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2·79/4096
    assert mcnemar_exact_p(10, 2) == 158 / 4096
    assert mcnemar_exact_p(2, 10) == 158 / 4096
    assert mcnemar_exact_p(3, 0) == 0.25
    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(5, 5) == 1.0
    # large counts stay exact big-integer arithmetic: 39 against 58 (a HAR integer model vs its float model)
    assert mcnemar_exact_p(39, 58) == pytest.approx(0.0670518, abs=1e-6)
    with pytest.raises(ValueError, match="≥ 0"):
        mcnemar_exact_p(-1, 3)


@pytest.mark.parametrize("only_a, only_b", [(0, 1), (1, 4), (7, 7), (12, 30), (50, 66), (120, 90)])
def test_mcnemar_exact_p_agrees_with_scipys_binomial_test(only_a: int, only_b: int) -> None:
    from scipy.stats import binomtest

    expected = binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert mcnemar_exact_p(only_a, only_b) == pytest.approx(expected, rel=1e-9)


def test_compare_decisions_counts_and_interval() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    model = np.array([0, 1, 2, 1, 1, 0])      # right on 0, 1, 2, 4
    reference = np.array([0, 0, 2, 0, 2, 0])  # right on 0, 2, 3
    c = compare_decisions(model, reference, labels)
    assert (c.n, c.correct_a, c.correct_b, c.only_a, c.only_b, c.changed) == (6, 4, 3, 2, 1, 3)
    assert c.difference == pytest.approx(100 / 6)
    # ½ added to each cell, n + 2 = 8: p1 = 2.5/8, p2 = 1.5/8, d = 0.125,
    # half width = 1.959964·√((0.5 − 0.125²)/8) = 0.482276
    lo, hi = c.interval95
    assert lo == pytest.approx(-35.7276, abs=1e-3) and hi == pytest.approx(60.7276, abs=1e-3)
    assert c.p_value == 1.0
    record = c.to_dict()
    assert PairedComparison.from_dict(record) == c
    assert (record["only_model_right"], record["only_reference_right"], record["changed"]) == (2, 1, 3)
    assert "difference +16.67 points" in c.summary() and "3 of 6 decided differently" in c.summary()
    same = compare_decisions(labels, labels, labels)
    assert (same.difference, same.p_value, same.changed) == (0.0, 1.0, 0)
    # no disagreement still leaves an interval: 1.959964·√(0.125/8) = 0.245
    assert same.interval95 == pytest.approx((-24.4995, 24.4995), abs=1e-3)


def test_compare_decisions_refuses_mismatched_or_empty_splits() -> None:
    with pytest.raises(UserError, match="on 3, 2 and 3 sequences"):
        compare_decisions(np.zeros(3), np.zeros(2), np.zeros(3))
    with pytest.raises(UserError, match="empty split"):
        compare_decisions(np.zeros(0), np.zeros(0), np.zeros(0))

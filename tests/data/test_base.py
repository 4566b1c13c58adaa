"""Containers, option parsing, stratified splits and normalisation of snnhw.data.base."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snnhw.data.base import (Normalisation, Option, SequenceDataset, options_help, resolve_options, split_rng,
                             stratified_split)
from snnhw.errors import UserError


def _ragged(seed: int = 0) -> SequenceDataset:
    rng = np.random.default_rng(seed)
    lengths = np.array([1, 3, 5, 2], dtype=np.int64)
    x = rng.normal(3.0, 2.0, size=(4, 5, 2)).astype(np.float32)
    x *= (np.arange(5)[None, :] < lengths[:, None])[:, :, None]
    return SequenceDataset(x, np.array([0, 1, 0, 1], dtype=np.int64), lengths)


def test_normalisation_uses_valid_elements_only_and_keeps_padding_zero() -> None:
    ds = _ragged()
    norm = Normalisation.fit(ds)
    valid = ds.x[ds.mask()].astype(np.float64)
    np.testing.assert_array_equal(norm.mean, valid.mean(axis=0).astype(np.float32))
    np.testing.assert_array_equal(norm.std, valid.std(axis=0).astype(np.float32))
    out = norm.apply(ds)
    assert np.all(out.x[~ds.mask()] == 0.0)
    np.testing.assert_allclose(out.x[ds.mask()].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.x[ds.mask()].std(axis=0), 1.0, rtol=1e-5)
    assert out.x.dtype == np.float32


def test_normalisation_constant_feature_and_roundtrip() -> None:
    x = np.zeros((3, 2, 2), dtype=np.float32)
    x[:, :, 1] = np.arange(6, dtype=np.float32).reshape(3, 2)
    norm = Normalisation.fit(SequenceDataset.fixed_length(x, np.zeros(3)))
    assert norm.std[0] == 1.0 and norm.mean[0] == 0.0
    back = Normalisation.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.mean, norm.mean)
    np.testing.assert_array_equal(back.std, norm.std)
    with pytest.raises(UserError):
        Normalisation.from_dict({"mean": [0.0], "std": [0.0]})


def test_sequence_dataset_rejects_bad_lengths() -> None:
    x = np.zeros((2, 3, 1), dtype=np.float32)
    with pytest.raises(ValueError):
        SequenceDataset(x, np.zeros(2, dtype=np.int64), np.array([0, 3], dtype=np.int64))


def test_stratified_split_is_exact_stratified_and_seeded() -> None:
    y = np.repeat(np.arange(3), [50, 30, 20])
    keep, held = stratified_split(y, 0.1, split_rng(7, 2))
    assert len(held) == 10 and len(keep) == 90
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(100))
    np.testing.assert_array_equal(np.bincount(y[held]), [5, 3, 2])
    keep2, held2 = stratified_split(y, 0.1, split_rng(7, 2))
    np.testing.assert_array_equal(held, held2)
    _, held3 = stratified_split(y, 0.1, split_rng(8, 2))
    assert not np.array_equal(held, held3)
    _, none = stratified_split(y, 0.0, split_rng(7, 2))
    assert len(none) == 0


def test_options_parse_strings_and_reject_unknown() -> None:
    spec = {"flag": Option("bool", False, "a flag"), "n": Option("int", 3, "a count"),
            "xs": Option("ints", [1], "a list"), "mode": Option("str", "a", "a mode", choices=("a", "b")),
            "auto": Option("float", None, "derived")}
    got = resolve_options("toy", spec, {"flag": "yes", "n": "5", "xs": "2, 4", "auto": "auto"})
    assert got == {"flag": True, "n": 5, "xs": [2, 4], "mode": "a", "auto": None}
    with pytest.raises(UserError, match="unknown option 'nope'"):
        resolve_options("toy", spec, {"nope": 1})
    with pytest.raises(UserError, match="expects int"):
        resolve_options("toy", spec, {"n": "many"})
    with pytest.raises(UserError, match="one of a, b"):
        resolve_options("toy", spec, {"mode": "c"})
    assert "flag (bool, default False)" in options_help(spec)

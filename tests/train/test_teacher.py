"""The distillation teacher: one model as it is, an ensemble's averaged logits, each member fed the
inputs in its own normalisation."""

from __future__ import annotations

import numpy as np
import torch

from snnhw.data.base import Normalisation, SequenceDataset
from snnhw.model import ModelConfig, build_model
from snnhw.train.seed import seed_everything
from snnhw.train.teacher import Teacher, _own_inputs, renormalisation

HARD = ModelConfig(input_size=3, num_classes=3, hidden_size=8)


def _raw() -> SequenceDataset:
    rng = np.random.default_rng(5)
    lengths = rng.integers(2, 7, size=10).astype(np.int64)
    x = (rng.normal(size=(10, 6, 3)) * [1.0, 3.0, 0.5] + [0.2, -4.0, 9.0]).astype(np.float32)
    x *= (np.arange(6)[None, :] < lengths[:, None])[:, :, None]
    return SequenceDataset(x, rng.integers(0, 3, size=10).astype(np.int64), lengths)


def _model(seed: int) -> torch.nn.Module:
    seed_everything(seed)
    return build_model(HARD).eval()


def test_one_teacher_gives_its_model_logits() -> None:
    ds, model = _raw(), _model(0)
    x, lengths = torch.from_numpy(ds.x), torch.from_numpy(ds.lengths)
    with torch.no_grad():
        assert torch.equal(Teacher([model], [None])(x, lengths), model(x, lengths))


def test_an_ensemble_averages_the_logits() -> None:
    ds, models = _raw(), [_model(s) for s in (0, 1, 2)]
    x, lengths = torch.from_numpy(ds.x), torch.from_numpy(ds.lengths)
    with torch.no_grad():
        logits = [m(x, lengths) for m in models]
        assert torch.equal(Teacher(models, [None] * 3)(x, lengths), (logits[0] + logits[1] + logits[2]) / 3)
        assert not torch.allclose(logits[0], logits[1])


def test_a_teacher_reads_the_inputs_in_its_own_normalisation() -> None:
    """Inputs normalised for the student, renormalised for a teacher fitted on other data, equal
    the inputs normalised for that teacher directly (to float rounding), padding exactly 0."""
    raw = _raw()
    student = Normalisation.fit(raw)
    teacher = Normalisation.fit(raw.subset(np.arange(5)))
    assert renormalisation(student, student) is None
    affine = renormalisation(student, teacher)
    assert affine is not None
    lengths = torch.from_numpy(raw.lengths)
    mine = _own_inputs(torch.from_numpy(student.apply(raw).x), lengths, affine)
    direct = torch.from_numpy(teacher.apply(raw).x)
    assert torch.allclose(mine, direct, atol=1e-5, rtol=1e-5)
    padding = torch.arange(6)[None, :] >= lengths[:, None]
    assert bool((mine[padding] == 0).all()) and bool(padding.any())
    model = _model(3)
    with torch.no_grad():
        assert torch.allclose(Teacher([model], [affine])(torch.from_numpy(student.apply(raw).x), lengths),
                              model(direct, lengths), atol=1e-5)

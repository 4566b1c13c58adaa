"""The teacher of knowledge distillation (``snnhw train --distill``): one trained classifier, or
several whose logits are averaged (an ensemble teacher, ``--teacher`` repeated).

The student's data are normalised with the student's :class:`~snnhw.data.base.Normalisation`
(``x_s = (x − m_s) / s_s`` per feature). A teacher trained with another normalisation (another
training split, hence other means and deviations) is fed ``(x − m_t) / s_t``, computed from
``x_s`` as ``x_s · (s_s / s_t) + (m_s − m_t) / s_t`` with the padding beyond each sequence's
length kept at 0; a teacher with the student's normalisation gets ``x_s`` unchanged.

References: Hinton, Vinyals and Dean, "Distilling the knowledge in a neural network" (2015),
§2 (an ensemble's averaged predictions as the soft targets); docs/training.md ("Distillation from
the hard LSTM").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from snnhw.data.base import Normalisation


class Teacher(nn.Module):
    """The mean of the logits of ``models`` (each ``model(x, lengths)`` → ``[B, classes]``).

    Args:
        models: trained classifiers of the same classes, in the same order.
        renormalise: per model, None (it reads the student's normalised inputs) or the float32
            ``(scale, offset)`` ``[D]`` tensors that turn them into its own (see the module
            docstring); :func:`renormalisation` computes them.
    """

    def __init__(self, models: Sequence[nn.Module],
                 renormalise: Sequence[tuple[torch.Tensor, torch.Tensor] | None]) -> None:
        super().__init__()
        if not models or len(models) != len(renormalise):
            raise ValueError("a teacher needs at least one model and one renormalisation entry per model")
        self.members = nn.ModuleList(models)
        self._affine = list(renormalise)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Averaged logits ``[B, classes]`` of ``x`` ``[B, N, D]`` (the student's normalisation)
        with valid lengths ``lengths`` ``[B]``."""
        total = sum(model(_own_inputs(x, lengths, affine), lengths)
                    for model, affine in zip(self.members, self._affine, strict=True))
        return total / len(self.members)  # exact for one member


def _own_inputs(x: torch.Tensor, lengths: torch.Tensor,
                affine: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """``x`` in a teacher's normalisation (``x`` itself when ``affine`` is None)."""
    if affine is None:
        return x
    scale, offset = (t.to(device=x.device, dtype=x.dtype) for t in affine)
    valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
    return (x * scale + offset) * valid[:, :, None].to(x.dtype)


def renormalisation(student: Normalisation,
                    teacher: Normalisation) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The ``(scale, offset)`` taking ``student``-normalised inputs to ``teacher``'s, or None
    when the two normalisations are equal (element for element)."""
    if np.array_equal(student.mean, teacher.mean) and np.array_equal(student.std, teacher.std):
        return None
    s_s, m_s = student.std.astype(np.float64), student.mean.astype(np.float64)
    s_t, m_t = teacher.std.astype(np.float64), teacher.mean.astype(np.float64)
    return (torch.tensor(s_s / s_t, dtype=torch.float32), torch.tensor((m_s - m_t) / s_t, dtype=torch.float32))

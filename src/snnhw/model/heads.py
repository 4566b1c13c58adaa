"""The non-spiking classifier head shared by the hard and the spiking LSTM."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Head(nn.Module):
    """FC classifier on the readout ``r`` [B, H].

    ``head_hidden == 0``: ``logits = fc1(r)`` with ``fc1 = Linear(H, C)``.
    ``head_hidden > 0``: ``logits = fc2(relu(fc1(r)))`` with ``fc1 = Linear(H, head_hidden)``
    and ``fc2 = Linear(head_hidden, C)`` (the paper's GSC head, 32 → classes).
    """

    def __init__(self, hidden_size: int, num_classes: int, head_hidden: int = 0) -> None:
        super().__init__()
        self.head_hidden = head_hidden
        if head_hidden == 0:
            self.fc1 = nn.Linear(hidden_size, num_classes)
        else:
            self.fc1 = nn.Linear(hidden_size, head_hidden)
            self.fc2 = nn.Linear(head_hidden, num_classes)

    def forward(self, r: Tensor) -> Tensor:
        """Logits [B, C] from the readout [B, H]."""
        if self.head_hidden == 0:
            return self.fc1(r)
        return self.fc2(torch.relu(self.fc1(r)))

"""Model configuration shared by the float models, the trainer, the checkpoint and the quantizer.

Gate order everywhere in snnhw (weights stacked along dim 0 in blocks of ``hidden_size``):
``GATES = ("f", "i", "g", "o")``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from snnhw.errors import UserError

GATES: tuple[str, ...] = ("f", "i", "g", "o")
"""Gate order of the stacked weight matrices: forget, input, cell candidate, output."""

Encoding = Literal["direct", "rate"]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model (hard or spiking) from a state dict.

    Attributes:
        input_size: features per sequence element (D).
        num_classes: classifier outputs.
        hidden_size: LSTM units per layer (H).
        num_layers: stacked LSTM layers (1 or 2).
        head_hidden: 0 for a single FC head, else the width of a hidden FC layer (ReLU) as in
            the paper's GSC model (32 → classes).
        spiking: False for the non-spiking hard LSTM, True for the spiking LIF-LSTM.
        T: time steps per sequence element (spiking only).
        encoding: layer-1 input encoding, "direct" (analog x at every t) or "rate" (Bernoulli).
        nonspiking_gate: which of i, g stays non-spiking (the other one spikes).
        shift: fold the paper's θ/(2T) shifts (and the sign-dependent ternary shifts).
        train_theta: thresholds are trainable parameters.
        train_leak: leaks λ are trainable parameters (else fixed at their value, IF when 1).
        gamma: maximum value of the triangular surrogate gradient.
    """

    input_size: int
    num_classes: int
    hidden_size: int = 128
    num_layers: int = 1
    head_hidden: int = 0
    spiking: bool = False
    T: int = 4
    encoding: Encoding = "direct"
    nonspiking_gate: Literal["i", "g"] = "g"
    shift: bool = True
    train_theta: bool = True
    train_leak: bool = True
    gamma: float = 0.3

    def __post_init__(self) -> None:
        checks = [
            (self.input_size >= 1, f"input_size must be ≥ 1, got {self.input_size}"),
            (self.num_classes >= 2, f"num_classes must be ≥ 2, got {self.num_classes}"),
            (self.hidden_size >= 1, f"hidden_size must be ≥ 1, got {self.hidden_size}"),
            (self.num_layers in (1, 2), f"num_layers must be 1 or 2, got {self.num_layers}"),
            (self.head_hidden >= 0, f"head_hidden must be ≥ 0, got {self.head_hidden}"),
            (self.T >= 1, f"T must be ≥ 1, got {self.T}"),
            (self.encoding in ("direct", "rate"), f"encoding must be direct or rate, got {self.encoding!r}"),
            (self.nonspiking_gate in ("i", "g"), f"nonspiking_gate must be i or g, got {self.nonspiking_gate!r}"),
            (self.gamma > 0, f"gamma must be > 0, got {self.gamma}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored in checkpoints and frozen models)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (foreign/incompatible file)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"model config has unknown fields {unknown} (incompatible snnhw version?)")
        return cls(**data)

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with some fields changed (validated again)."""
        return ModelConfig.from_dict({**self.to_dict(), **changes})

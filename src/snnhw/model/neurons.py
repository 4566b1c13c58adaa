"""Activation functions and spiking neurons of the float models (one step, vectorised).

Everything here is elementwise on tensors of any shape; thresholds and leaks are tensors that
broadcast against the membrane (0-dim parameters, or per-slot tensors built from them).
All quantities are dimensionless floats in the unit of the pre-activation z.

* :func:`hard_sigmoid`, :func:`hard_tanh2`: the non-spiking source activations.
* :class:`SpikeFunction`: Heaviside step ``[u > θ]`` with the triangular surrogate gradient
  ``∂s/∂u = (γ/θ)·max(0, 1 − |u/θ − 1|)`` (paper, after Bellec et al. 2018); the gradient also
  reaches θ through ``s = H(u/θ − 1)``: ``∂s/∂θ = −(u/θ)·∂s/∂u``.
* :func:`binary_lif`, :func:`ternary_lif`, :func:`ternary_shift`: one time step of the LIF
  neurons (leak first, then add the input, compare, soft reset).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def hard_sigmoid(z: Tensor, v: Tensor) -> Tensor:
    """Hard sigmoid ``clip(z/v + 1/2, 0, 1)`` with threshold ``v > 0`` (slope 1/v, centred at 0)."""
    return torch.clamp(z / v + 0.5, 0.0, 1.0)


def hard_tanh2(z: Tensor, v_pos: Tensor, v_neg: Tensor) -> Tensor:
    """Hard tanh with two thresholds (paper: two decoupled hard sigmoids).

    ``clip(z/v_pos, 0, 1)`` for ``z ≥ 0`` and ``clip(z/v_neg, −1, 0)`` for ``z < 0``; both
    thresholds are positive magnitudes.
    """
    # one of the two terms is always 0 (exactly), so the sum selects the other one
    return torch.clamp(z / v_pos, 0.0, 1.0) + torch.clamp(z / v_neg, -1.0, 0.0)


class SpikeFunction(torch.autograd.Function):
    """``s = [u > θ]`` (1.0 or 0.0 in u's dtype) with the triangular surrogate gradient.

    Backward: ``∂s/∂u = (γ/θ)·max(0, 1 − |u/θ − 1|)`` and ``∂s/∂θ = −(u/θ)·∂s/∂u`` (the
    derivative of the surrogate of ``H(u/θ − 1)``), summed to θ's shape (θ is usually 0-dim).
    ``γ`` is a Python float (``ModelConfig.gamma``), the peak of the surrogate in units of 1/θ.
    """

    @staticmethod
    def forward(ctx: Any, u: Tensor, theta: Tensor, gamma: float) -> Tensor:  # noqa: D102
        ctx.save_for_backward(u, theta)
        ctx.gamma = gamma
        # [u > θ] as float without bool tensors (slow on CPU): u − θ > 0 ⟺ u > θ in IEEE arithmetic
        return (u - theta).sign_().clamp_(min=0.0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # noqa: D102
        u, theta = ctx.saved_tensors
        peak = ctx.gamma / theta  # (γ/θ)·max(0, 1 − |u − θ|/θ) = max(0, γ/θ − |u − θ|·γ/θ²), in place
        grad_u = (u - theta).abs_().mul_(-peak / theta).add_(peak).clamp_(min=0.0).mul_(grad)
        grad_theta = None
        if ctx.needs_input_grad[1]:
            grad_theta = (grad_u * u).sum_to_size(theta.shape).neg_().div_(theta)
        return (grad_u if ctx.needs_input_grad[0] else None), grad_theta, None


spike = SpikeFunction.apply
"""``spike(u, θ, γ)``: :class:`SpikeFunction` as a function."""


class BinaryLIFFunction(torch.autograd.Function):
    """One binary LIF step as a single autograd node (fewer passes over memory than the
    composition ``u = leak·u_prev + z; s = spike(u, θ); u − θ·s``, with the same values and
    the same gradients: the surrogate of :class:`SpikeFunction`, also through the reset)."""

    @staticmethod
    def forward(  # noqa: D102
        ctx: Any, u_prev: Tensor, z: Tensor, theta: Tensor, leak: Tensor, gamma: float
    ) -> tuple[Tensor, Tensor]:
        u = u_prev * leak + z
        s = (u - theta).sign_().clamp_(min=0.0)
        ctx.save_for_backward(u_prev, u, s, theta, leak)
        ctx.gamma = gamma
        ctx.z_shape = z.shape
        return s, u - theta * s

    @staticmethod
    def backward(  # noqa: D102
        ctx: Any, grad_s: Tensor, grad_u_out: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None, None]:
        u_prev, u, s, theta, leak = ctx.saved_tensors
        peak = ctx.gamma / theta
        dsdu = (u - theta).abs_().mul_(-peak / theta).add_(peak).clamp_(min=0.0)  # ∂s/∂u
        grad_s_total = grad_s - theta * grad_u_out  # s enters the output and the reset
        grad_u = torch.addcmul(grad_u_out, grad_s_total, dsdu)  # ∂L/∂u (before the reset)
        need = ctx.needs_input_grad
        grad_prev = (grad_u * leak).sum_to_size(u_prev.shape) if need[0] else None
        grad_z = grad_u.sum_to_size(ctx.z_shape) if need[1] else None
        grad_theta = None
        if need[2]:  # −s from the reset, ∂s/∂θ = −(u/θ)·∂s/∂u from the spike
            through_spike = (grad_s_total * dsdu * u).sum_to_size(theta.shape).div_(theta)
            grad_theta = (grad_u_out * s).sum_to_size(theta.shape).add_(through_spike).neg_()
        grad_leak = (grad_u * u_prev).sum_to_size(leak.shape) if need[3] else None
        return grad_prev, grad_z, grad_theta, grad_leak, None


def binary_lif(u_prev: Tensor, z: Tensor, theta: Tensor, leak: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    """One step of the binary LIF neuron (sigmoid-type gates).

    ``u = leak·u_prev + z;  s = [u > θ];  u ← u − θ·s`` (soft reset). Gradients: the
    surrogate ``∂s/∂u`` of :class:`SpikeFunction` (also through the reset) and plain calculus
    for ``leak``, ``u_prev``, ``z``, ``θ``.

    Returns ``(s, u)``: the spike in {0, 1} and the membrane after the reset.
    """
    return BinaryLIFFunction.apply(u_prev, z, theta, leak, gamma)


def ternary_shift(y: Tensor, sigma_pos: Tensor, sigma_neg: Tensor) -> Tensor:
    """The paper's sign-dependent shift: ``y + σ+`` if ``y > 0``, ``y − σ−`` if ``y < 0``, else ``y``.

    With ``σ± = θ±/(2T)`` this is the optimal shift of a ternary IF neuron (Appendix B).
    """
    sgn = torch.sign(y)
    pos = torch.relu(sgn)  # [y > 0]
    neg = pos - sgn  # [y < 0]
    # (y + σ+·pos) − σ−·neg: exactly y + σ+, y − σ− or y (the products are σ or 0)
    return torch.addcmul(torch.addcmul(y, pos, sigma_pos), neg, sigma_neg, value=-1.0)


def ternary_lif(
    u_prev: Tensor, y: Tensor, theta_pos: Tensor, theta_neg: Tensor, leak: Tensor, gamma: float
) -> tuple[Tensor, Tensor]:
    """One step of the ternary LIF neuron (tanh-type: g when it spikes, and the activation of c).

    ``u = leak·u_prev + y;  s = +1 if u > θ+, −1 if u < −θ−, else 0;  u ← u − θ+`` (s = +1)
    ``or u + θ−`` (s = −1). ``y`` is the already shifted input (see :func:`ternary_shift`).
    The surrogate gradient of the negative half is the mirrored triangle around ``u = −θ−``.

    Returns ``(s, u)``: the spike in {−1, 0, +1} and the membrane after the reset.
    """
    u = u_prev * leak + y
    s_pos = spike(u, theta_pos, gamma)
    s_neg = spike(-u, theta_neg, gamma)
    return s_pos - s_neg, u - theta_pos * s_pos + theta_neg * s_neg

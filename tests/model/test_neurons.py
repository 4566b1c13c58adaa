"""Properties of the neurons of snnhw.model.neurons: the paper's closed forms and the surrogate."""

from __future__ import annotations

import math

import pytest
import torch

from snnhw.model.neurons import (
    binary_lif,
    hard_sigmoid,
    hard_tanh2,
    spike,
    ternary_lif,
    ternary_shift,
)
from snnhw.model.spiking_lstm import sigmoid_bias_offset

F64 = torch.float64


def _t(v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=F64)


def if_rate_sigmoid(z: torch.Tensor, theta: float, T: int, shift: bool) -> torch.Tensor:
    """Average output of the binary IF neuron driven by the constant input z (+ folded offsets)."""
    y = z + sigmoid_bias_offset(theta, T, shift, spiking=True)
    u = torch.zeros_like(z)
    count = torch.zeros_like(z)
    for _ in range(T):
        s, u = binary_lif(u, y, _t(theta), _t(1.0), 0.3)
        count += s
    return count / T


def if_rate_tanh(z: torch.Tensor, th_pos: float, th_neg: float, T: int, shift: bool) -> torch.Tensor:
    """Average output of the ternary IF neuron driven by the constant input z."""
    y = ternary_shift(z, _t(th_pos / (2 * T)), _t(th_neg / (2 * T))) if shift else z
    u = torch.zeros_like(z)
    count = torch.zeros_like(z)
    for _ in range(T):
        s, u = ternary_lif(u, y, _t(th_pos), _t(th_neg), _t(1.0), 0.3)
        count += s
    return count / T


def _away_from_integers(x: torch.Tensor, margin: float = 1e-6) -> torch.Tensor:
    return (x - torch.round(x)).abs() > margin


@pytest.mark.parametrize("T", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("theta", [0.37, 1.0, 2.5])
def test_if_sigmoid_matches_paper_closed_form(T: int, theta: float) -> None:
    """Paper: Ȳ_sig = (1/T)·clip(floor(T/θ·(z + θ/2)), 0, T) for the IF neuron (no shift)."""
    gen = torch.Generator().manual_seed(T * 100 + int(theta * 10))
    z = (torch.rand(5000, generator=gen, dtype=F64) - 0.5) * 4 * theta
    arg = T / theta * (z + theta / 2)
    keep = _away_from_integers(arg)
    expected = torch.clamp(torch.floor(arg), 0, T) / T
    got = if_rate_sigmoid(z, theta, T, shift=False)
    assert keep.sum() > 4900
    assert torch.equal(got[keep], expected[keep])


@pytest.mark.parametrize("T", [1, 2, 4, 7])
@pytest.mark.parametrize(("th_pos", "th_neg"), [(1.0, 1.0), (3.0, 2.0), (0.6, 1.7)])
def test_if_tanh_matches_paper_closed_form(T: int, th_pos: float, th_neg: float) -> None:
    """Paper: (1/T)·clip(floor(T z/θ+), 0, T) for z > 0 and −(1/T)·clip(floor(T|z|/θ−), 0, T) for z < 0."""
    gen = torch.Generator().manual_seed(T)
    z = (torch.rand(5000, generator=gen, dtype=F64) - 0.5) * 3 * (th_pos + th_neg)
    arg = torch.where(z > 0, T * z / th_pos, T * z.abs() / th_neg)
    keep = _away_from_integers(arg)
    expected = torch.sign(z) * torch.clamp(torch.floor(arg), 0, T) / T
    got = if_rate_tanh(z, th_pos, th_neg, T, shift=False)
    assert torch.equal(got[keep], expected[keep])


@pytest.mark.parametrize("T", [1, 2, 4, 8])
def test_shift_lowers_mean_conversion_error(T: int) -> None:
    """With the θ/(2T) shifts the mean |rate − hard activation| over uniform inputs is lower."""
    z = torch.linspace(-3.0, 3.0, 6001, dtype=F64)
    theta, th_pos, th_neg = 1.3, 1.1, 0.8
    target = hard_sigmoid(z, _t(theta))
    err_plain = (if_rate_sigmoid(z, theta, T, shift=False) - target).abs().mean()
    err_shift = (if_rate_sigmoid(z, theta, T, shift=True) - target).abs().mean()
    assert err_shift < err_plain
    # the shift turns the floor into a rounding: the mean error halves
    assert err_shift.item() == pytest.approx(err_plain.item() / 2, rel=0.02)
    target = hard_tanh2(z, _t(th_pos), _t(th_neg))
    err_plain = (if_rate_tanh(z, th_pos, th_neg, T, shift=False) - target).abs().mean()
    err_shift = (if_rate_tanh(z, th_pos, th_neg, T, shift=True) - target).abs().mean()
    assert err_shift < err_plain


def test_rate_approaches_hard_activations_as_T_grows() -> None:
    """max |rate − hard activation| ≤ 1/T without and ≤ 1/(2T) with the shift."""
    z = torch.linspace(-2.5, 2.5, 2001, dtype=F64)
    theta, th_pos, th_neg = 1.0, 0.9, 1.4
    sig = hard_sigmoid(z, _t(theta))
    tanh = hard_tanh2(z, _t(th_pos), _t(th_neg))
    previous = math.inf
    for T in (1, 2, 4, 8, 16, 32, 64):
        e_plain = (if_rate_sigmoid(z, theta, T, shift=False) - sig).abs().max().item()
        e_shift = (if_rate_sigmoid(z, theta, T, shift=True) - sig).abs().max().item()
        t_plain = (if_rate_tanh(z, th_pos, th_neg, T, shift=False) - tanh).abs().max().item()
        t_shift = (if_rate_tanh(z, th_pos, th_neg, T, shift=True) - tanh).abs().max().item()
        assert e_plain <= 1 / T + 1e-12 and t_plain <= 1 / T + 1e-12
        assert e_shift <= 1 / (2 * T) + 1e-12 and t_shift <= 1 / (2 * T) + 1e-12
        assert e_shift < previous
        previous = e_shift
    assert previous < 0.01


def _eq6_first_spike(y: torch.Tensor, theta: float, lam: float) -> torch.Tensor:
    """Eq. (6): t = ceil(log(1 − θ(1−λ)/y) / log λ) (real-valued argument returned unrounded)."""
    return torch.log(1 - theta * (1 - lam) / y) / math.log(lam)


@pytest.mark.parametrize("lam", [0.5, 0.8, 0.9, 0.97, 1.05, 1.3])
def test_lif_spike_count_matches_eq_6_7_with_reset_to_zero(lam: float) -> None:
    """Eq. (6)-(7) under their assumption (membrane reset to 0 after a spike).

    The harness drives :func:`binary_lif` with a constant input y from U = 0 and sets the
    membrane of every neuron that spiked back to 0 (the paper's assumption; the model itself
    uses the soft reset). The count must be floor(T/t) with t from Eq. (6), and 0 when
    y ≤ θ(1−λ).
    """
    theta, T = 1.0, 24
    gen = torch.Generator().manual_seed(int(lam * 100))
    y = torch.rand(4000, generator=gen, dtype=F64) * 1.5
    if lam < 1:
        y = y - 0.2 * theta * (1 - lam)  # some inputs below θ(1−λ): never spike
    u = torch.zeros_like(y)
    count = torch.zeros_like(y)
    for _ in range(T):
        s, u = binary_lif(u, y, _t(theta), _t(lam), 0.3)
        u = torch.where(s > 0, 0.0, u)
        count += s
    fires = y > max(theta * (1 - lam), 0.0)
    arg = torch.where(fires, _eq6_first_spike(torch.where(fires, y, 1.0), theta, lam), 1.0)
    keep = _away_from_integers(arg, 1e-9)
    t_first = torch.ceil(arg)
    expected = torch.where(fires, torch.floor(T / t_first), 0.0)
    assert (~fires).sum() > 0 or lam > 1
    assert torch.equal(count[keep], expected[keep])


@pytest.mark.parametrize("lam", [0.6, 0.9, 1.1])
def test_lif_soft_reset_first_spike_eq_6_and_count_at_least_eq_7(lam: float) -> None:
    """With the implemented soft reset the first spike still comes at Eq. (6)'s t; later
    spikes come no later than after a reset to 0 (the residue above θ is kept)."""
    theta, T = 0.7, 20
    y = torch.linspace(0.01, 1.2, 3000, dtype=F64)
    u = torch.zeros_like(y)
    count = torch.zeros_like(y)
    first = torch.full_like(y, math.inf)
    for step in range(1, T + 1):
        s, u = binary_lif(u, y, _t(theta), _t(lam), 0.3)
        first = torch.where((s > 0) & torch.isinf(first), float(step), first)
        count += s
    fires = y > theta * (1 - lam)
    arg = torch.where(fires, _eq6_first_spike(torch.where(fires, y, 1.0), theta, lam), 1.0)
    t_first = torch.ceil(arg)
    keep = fires & _away_from_integers(arg, 1e-9) & (t_first <= T)
    assert keep.sum() > 1000
    assert torch.equal(first[keep], t_first[keep])
    assert bool((count[keep] >= torch.floor(T / t_first[keep])).all())


def test_surrogate_gradient_binary() -> None:
    """∂s/∂u = (γ/θ)·max(0, 1 − |u/θ − 1|), ∂s/∂θ = −(u/θ)·∂s/∂u."""
    gamma, theta_v = 0.3, 1.7
    u = torch.linspace(-1.0, 5.0, 601, dtype=F64, requires_grad=True)
    theta = torch.tensor(theta_v, dtype=F64, requires_grad=True)
    s = spike(u, theta, gamma)
    assert torch.equal(s, (u > theta_v).to(F64))
    gu, gt = torch.autograd.grad(s.sum(), (u, theta))
    expected = gamma / theta_v * torch.clamp(1 - (u.detach() / theta_v - 1).abs(), min=0)
    torch.testing.assert_close(gu, expected, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(gt, -(u.detach() / theta_v * expected).sum(), rtol=1e-12, atol=1e-15)
    assert gu.max().item() == pytest.approx(gamma / theta_v)


def test_surrogate_gradient_ternary_is_mirrored() -> None:
    """Ternary: the triangle around +θ+ plus the mirrored triangle around −θ−."""
    gamma, tp, tn = 0.5, 1.2, 0.7
    u_prev = torch.linspace(-3.0, 3.0, 601, dtype=F64, requires_grad=True)
    s, _ = ternary_lif(u_prev, torch.zeros_like(u_prev), _t(tp), _t(tn), _t(1.0), gamma)
    (g,) = torch.autograd.grad(s.sum(), u_prev)
    u = u_prev.detach()
    expected = gamma / tp * torch.clamp(1 - (u / tp - 1).abs(), min=0) + gamma / tn * torch.clamp(
        1 - (u / tn + 1).abs(), min=0
    )
    torch.testing.assert_close(g, expected, rtol=1e-13, atol=1e-15)
    assert torch.equal(s, (u > tp).to(F64) - (u < -tn).to(F64))


def test_lif_reset_and_leak_order() -> None:
    """Leak first, then add; soft reset by θ (binary) and θ+ / θ− (ternary)."""
    s, u = binary_lif(_t(0.5), _t(0.9), _t(1.0), _t(0.8), 0.3)
    assert (s.item(), u.item()) == (1.0, pytest.approx(0.5 * 0.8 + 0.9 - 1.0))
    s, u = ternary_lif(_t(-0.5), _t(-0.4), _t(1.0), _t(0.6), _t(0.5), 0.3)
    assert (s.item(), u.item()) == (-1.0, pytest.approx(-0.25 - 0.4 + 0.6))
    s, u = ternary_lif(_t(0.2), _t(0.3), _t(1.0), _t(0.6), _t(1.0), 0.3)
    assert (s.item(), u.item()) == (0.0, pytest.approx(0.5))


def test_ternary_shift_keeps_zero() -> None:
    y = torch.tensor([-2.0, -0.0, 0.0, 3.0], dtype=F64)
    assert torch.equal(ternary_shift(y, _t(0.25), _t(0.5)), torch.tensor([-2.5, 0.0, 0.0, 3.25], dtype=F64))


@pytest.mark.parametrize("leak_shape", [(), (4, 1, 1)])
def test_fused_binary_lif_equals_composition(leak_shape: tuple[int, ...]) -> None:
    """binary_lif (one autograd node) == leak·u + z → spike → soft reset built from SpikeFunction:
    same values, same gradients for u_prev, z, θ and λ (scalar or per-slot λ)."""
    gen = torch.Generator().manual_seed(1)
    u_prev = torch.randn(4, 5, 6, generator=gen, dtype=F64).requires_grad_()
    z = torch.randn(4, 5, 6, generator=gen, dtype=F64).requires_grad_()
    theta = torch.tensor(0.7, dtype=F64, requires_grad=True)
    leak = (torch.rand(leak_shape, generator=gen, dtype=F64) + 0.5).requires_grad_()
    w_s, w_u = torch.randn(2, 4, 5, 6, generator=gen, dtype=F64)
    s, u = binary_lif(u_prev, z, theta, leak, 0.3)
    grads = torch.autograd.grad((s * w_s).sum() + (u * w_u).sum(), (u_prev, z, theta, leak))
    u_ref = u_prev * leak + z
    s_ref = spike(u_ref, theta, 0.3)
    u_ref = u_ref - theta * s_ref
    grads_ref = torch.autograd.grad((s_ref * w_s).sum() + (u_ref * w_u).sum(), (u_prev, z, theta, leak))
    assert torch.equal(s, s_ref) and torch.equal(u, u_ref)
    assert 0 < s.mean() < 1
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert g.shape == g_ref.shape
        torch.testing.assert_close(g, g_ref, rtol=1e-13, atol=1e-14)

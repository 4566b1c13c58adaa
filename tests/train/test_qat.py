"""Quantization-aware training: the snapped values are the quantizer's integers times their
scales, the forward pass runs on them while the optimiser moves the latent values, and what is
kept lies on the grid."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import snnhw.train.trainer as trainer
from snnhw.data.registry import load_dataset
from snnhw.errors import UserError
from snnhw.model import ModelConfig, build_model
from snnhw.quant.quantizer import quantize_spiking, snap_spiking
from snnhw.train.qat import QuantAware, quant_aware
from snnhw.train.seed import seed_everything
from snnhw.train.trainer import evaluate, fit
from train_fixtures import record_steps, write_npz

SPIKING = ModelConfig(input_size=3, num_classes=3, hidden_size=8, spiking=True, T=2)
ALPHA_X = 0.031


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = write_npz(tmp_path_factory.mktemp("data") / "toy.npz")
    return load_dataset("npz", str(path), seed=0, val_fraction=0.2, progress=False)


def _trained_like(cfg: ModelConfig, seed: int) -> torch.nn.Module:
    """A spiking model with spread-out weights, thresholds and leaks (not the conversion's 1s)."""
    seed_everything(seed)
    model = build_model(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "theta" in name:
                p.fill_(0.5 + float(torch.rand((), generator=gen)))
            elif "leak" in name:
                p.fill_(0.6 + 0.4 * float(torch.rand((), generator=gen)))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.4)
    return model


def _holding(model: torch.nn.Module, values: dict[str, np.ndarray]) -> torch.nn.Module:
    other = copy.deepcopy(model)
    state = other.state_dict()
    for key, value in values.items():
        state[key].copy_(torch.as_tensor(value))
    return other


CASES = [SPIKING, SPIKING.replace(nonspiking_gate="i"), SPIKING.replace(encoding="rate"),
         SPIKING.replace(num_layers=2, T=3)]


@pytest.mark.parametrize("cfg", CASES, ids=["g", "i", "rate", "two-layers"])
def test_snapped_values_are_the_quantizers_integers_times_their_scales(cfg: ModelConfig) -> None:
    model = _trained_like(cfg, seed=3)
    scale = ALPHA_X if cfg.encoding == "direct" else None
    frozen = quantize_spiking(model, input_scale=scale, n_max=6)
    snapped = snap_spiking(model, input_scale=scale)
    x_unit = frozen.input_scale if cfg.encoding == "direct" else 1.0
    H = cfg.hidden_size
    for index, layer in enumerate(frozen.layers):
        scales = frozen.scales["layers"][index]
        key = f"layers.{index}."
        for a, gate in enumerate("figo"):
            rows, alpha, xs = slice(a * H, (a + 1) * H), scales["alpha"][gate], scales["x_shift"][a]
            unit = x_unit if index == 0 else 1.0
            np.testing.assert_array_equal(snapped[key + "weight_h"][rows], layer.w_h[rows] * alpha)
            np.testing.assert_array_equal(snapped[key + "weight_x"][rows], layer.w_x[rows] * alpha / (unit * 2.0 ** xs))
            np.testing.assert_array_equal(snapped[key + "bias"][rows],
                                          (layer.bias[rows] - (1 - 2.0 ** -xs) / 2) * alpha)
        for gate in ("f", "o"):
            assert snapped[key + f"theta.{gate}"] == getattr(layer, gate).theta * scales["alpha"][gate]
        for k, v in scales["leak_fitted"].items():
            assert snapped[key + f"leak.{k}"] == v
        q_max = layer.g.hi if cfg.nonspiking_gate == "g" else layer.i.hi
        assert snapped[key + "theta.c"] == layer.c.theta_pos / q_max
    np.testing.assert_array_equal(snapped["head.fc1.weight"], frozen.head.w_out * frozen.scales["head"]["out"] / (1 / cfg.T))
    # a model holding them quantizes to the same weights, thresholds and leaks (the θ/(2T) shifts
    # are rounded from the snapped θ), and snaps to itself
    on_grid = _holding(model, snapped)
    again = quantize_spiking(on_grid, input_scale=scale, n_max=6)
    _same_integers(frozen, again, shifts=False)
    twice = snap_spiking(on_grid, input_scale=scale)
    assert all(np.array_equal(twice[k], snapped[k]) for k in snapped)
    _same_integers(again, quantize_spiking(_holding(on_grid, twice), input_scale=scale, n_max=6), shifts=True)


def _same_integers(a, b, shifts: bool) -> None:  # type: ignore[no-untyped-def]
    for mine, theirs in zip(a.layers, b.layers, strict=True):
        for name in ("w_x", "w_h", "bias"):
            np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name))
        for gate in "figoc":
            pick = {k: v for k, v in vars(getattr(mine, gate)).items() if shifts or not k.startswith("shift")}
            assert pick == {k: v for k, v in vars(getattr(theirs, gate)).items() if k in pick}
    np.testing.assert_array_equal(a.head.w_out, b.head.w_out)
    np.testing.assert_array_equal(a.head.b_out, b.head.b_out)


def test_snapped_context_runs_on_the_grid_and_restores_the_latent_values(bundle) -> None:  # type: ignore[no-untyped-def]
    model = _trained_like(SPIKING, seed=4)
    grid = quant_aware(model, bundle.train)
    latent = copy.deepcopy(model.state_dict())
    x = torch.as_tensor(bundle.train.x[:16])
    lengths = torch.as_tensor(bundle.train.lengths[:16])
    with grid.snapped(model):
        loss = model(x, lengths).logsumexp(dim=1).sum()
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert all(torch.equal(t, latent[n]) for n, t in model.state_dict().items()), "latent values not restored"
    on_grid = _holding(model, snap_spiking(model, input_scale=grid.input_scale))
    on_grid.zero_grad()
    on_grid(x, lengths).logsumexp(dim=1).sum().backward()
    assert grads and all(torch.equal(grads[n], p.grad) for n, p in on_grid.named_parameters() if n in grads)
    assert any(not torch.equal(p.grad, q.grad) for p, q in zip(on_grid.parameters(), _float_grads(model, x, lengths)))
    rounded = grid.round_inputs(x)
    steps = rounded.double() / grid.input_scale  # integers, up to the float32 representation of k·α_x
    assert float((steps - steps.round()).abs().max()) < 1e-4 and float((rounded - x).abs().max()) > 0
    inside = x.abs() <= 127 * grid.input_scale  # beyond the 99.9th percentile the input saturates
    assert float((rounded - x)[inside].abs().max()) <= grid.input_scale / 2 + 1e-6
    outside = steps[~inside].round()  # saturated to the signed 8-bit range -128..127
    assert len(outside) and bool(((outside == 127) | (outside == -128)).all())


def _float_grads(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.nn.Parameter]:
    other = copy.deepcopy(model)
    other.zero_grad()
    other(x, lengths).logsumexp(dim=1).sum().backward()
    return list(other.parameters())


@pytest.mark.parametrize("select", ["best", "last"])
def test_fit_trains_on_the_grid_and_keeps_snapped_weights(bundle, select: str) -> None:  # type: ignore[no-untyped-def]
    def run(qat: bool):  # type: ignore[no-untyped-def]
        model = _trained_like(SPIKING, seed=6)
        grid = quant_aware(model, bundle.train) if qat else None
        result = fit(model, bundle, epochs=3, lr=0.01, batch_size=32, seed=6, patience=None, progress=False,
                     log=None, select=select, qat=grid)
        return model, result, grid

    seen: list[torch.Tensor] = []
    forward = trainer._forward

    def recording(net, x, *rest):  # type: ignore[no-untyped-def]
        seen.append(x)
        return forward(net, x, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "_forward", recording)
        model, result, grid = run(True)
    steps = torch.cat([x.reshape(-1) for x in seen]).double() / grid.input_scale
    assert float((steps - steps.round()).abs().max()) < 1e-4, "trained on inputs off the grid"
    plain, _, _ = run(False)
    snapped = snap_spiking(model, input_scale=grid.input_scale)
    state = model.state_dict()
    assert all(torch.equal(state[k], torch.as_tensor(v, dtype=state[k].dtype)) for k, v in snapped.items())
    assert any(not torch.equal(t, plain.state_dict()[n]) for n, t in state.items())
    assert result.settings["qat"] == grid.to_dict() and grid.input_bits == 8
    kept = result.history[result.best_epoch - 1]
    assert evaluate(model, grid.round_split(bundle.val)) == {"accuracy": kept["val_accuracy"],
                                                             "loss": kept["val_loss"], "n": len(bundle.val)}


def test_latent_weights_follow_the_straight_through_gradients(bundle, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The optimiser steps the latent (float) values, not the snapped ones: after one step of
    plain SGD-like Adam the latent values are not on the grid."""
    seen = record_steps(monkeypatch)
    model = _trained_like(SPIKING, seed=7)
    grid = quant_aware(model, bundle.train)
    start = copy.deepcopy(model.state_dict())
    fit(model, bundle, epochs=1, lr=0.001, batch_size=32, seed=7, patience=None, progress=False, log=None,
        select="last", qat=grid)
    first = seen[0]
    snapped_start = grid.snapped_values(_holding(model, {k: v.numpy() for k, v in start.items()}))
    w = "layers.0.weight_x"
    moved = first[w] - start[w]
    assert 0 < float(moved.abs().max()) < 0.01, "the latent weights moved by one small Adam step"
    assert not torch.equal(first[w], snapped_start[w])


def test_quant_aware_refuses_what_it_cannot_snap(bundle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match="spiking"):
        quant_aware(build_model(SPIKING.replace(spiking=False)), bundle.train)
    model = _trained_like(SPIKING, seed=8)
    with torch.no_grad():
        model.layers[0].theta["f"].fill_(1e-6)
    with pytest.raises(UserError, match="below half a weight LSB"):
        quant_aware(model, bundle.train)
    assert QuantAware(8, 8, 2, 99.9, None).round_inputs(torch.ones(2)).equal(torch.ones(2))

"""Hard LSTM, conversion to the spiking LSTM, factory."""

from __future__ import annotations

import pytest
import torch

from snnhw.errors import UserError
from snnhw.model import (GATES, HardLSTM, ModelConfig, SpikingLSTM, build_model, convert_hard_to_spiking,
                         retime_spiking)

F64 = torch.float64


def hard_model(seed: int = 0, **kw: object) -> HardLSTM:
    base = dict(input_size=3, num_classes=4, hidden_size=5)
    base.update(kw)
    torch.manual_seed(seed)
    model = build_model(ModelConfig(**base)).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.weight_x.mul_(3.0)
            layer.weight_h.mul_(2.0)
            for v in layer.V.values():
                v.uniform_(0.5, 1.5)
    return model


def test_hard_lstm_follows_the_written_formulas() -> None:
    model = hard_model(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, generator=gen, dtype=F64)
    layer = model.layers[0]
    V = {k: v.detach() for k, v in layer.V.items()}
    H = 5
    h = torch.zeros(2, H, dtype=F64)
    c = torch.zeros(2, H, dtype=F64)

    def tanh2(z: torch.Tensor, key: str) -> torch.Tensor:
        pos = torch.clamp(z / V[key], 0, 1)
        neg = torch.clamp(z / V[key + "_neg"], -1, 0)
        return torch.where(z >= 0, pos, neg)

    with torch.no_grad():
        for n in range(6):
            z = x[:, n] @ layer.weight_x.T + h @ layer.weight_h.T + layer.bias
            zf, zi, zg, zo = (z[:, k * H:(k + 1) * H] for k in range(4))
            f = torch.clamp(zf / V["f"] + 0.5, 0, 1)
            i = torch.clamp(zi / V["i"] + 0.5, 0, 1)
            o = torch.clamp(zo / V["o"] + 0.5, 0, 1)
            c = f * c + i * tanh2(zg, "g")
            h = o * tanh2(c, "c")
        torch.testing.assert_close(model(x), model.head.fc1(h), rtol=0, atol=1e-13)
    assert 0 < (h != 0).float().mean()


def test_hard_lstm_variable_lengths_and_errors() -> None:
    model = hard_model(2, num_layers=2, head_hidden=3)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 8, 3, generator=gen, dtype=F64)
    lengths = torch.tensor([8, 1, 5, 3])
    logits = model(x, lengths)
    for b in range(4):
        # a different batch size may change BLAS's summation order: close, not bit-equal
        torch.testing.assert_close(logits[b:b + 1], model(x[b:b + 1, : int(lengths[b])]), rtol=0, atol=1e-12)
    x_noisy = x.clone()
    for b in range(4):
        x_noisy[b, int(lengths[b]):] = 1e3
    assert torch.equal(model(x_noisy, lengths), logits)
    with pytest.raises(UserError):
        model(x, torch.tensor([9, 1, 1, 1]))
    with pytest.raises(UserError):
        model(x[0])
    with pytest.raises(UserError):
        HardLSTM(ModelConfig(input_size=3, num_classes=4, spiking=True))


def test_hard_thresholds_trainable_and_named() -> None:
    model = build_model(ModelConfig(input_size=3, num_classes=4, hidden_size=5))
    assert isinstance(model, HardLSTM) and model.cfg.spiking is False
    layer = model.layers[0]
    assert set(layer.V) == {"f", "i", "g", "g_neg", "o", "c", "c_neg"}
    assert all(v.shape == () and float(v.detach()) == 1.0 for v in layer.V.values())
    model(torch.randn(2, 4, 3)).sum().backward()
    assert all(v.grad is not None for v in layer.V.values())
    frozen = build_model(ModelConfig(input_size=3, num_classes=4, train_theta=False))
    assert not any(v.requires_grad for v in frozen.layers[0].V.values())
    assert GATES == ("f", "i", "g", "o")


@pytest.mark.parametrize(("nonspiking", "shift", "T"), [("g", True, 2), ("i", True, 4), ("g", False, 3), ("i", False, 1)])
def test_conversion_copies_weights_head_and_thresholds(nonspiking: str, shift: bool, T: int) -> None:
    hard = hard_model(3, num_layers=2, head_hidden=4)
    cfg = hard.cfg.replace(spiking=True, T=T, nonspiking_gate=nonspiking, shift=shift, train_leak=False)
    snn = convert_hard_to_spiking(hard, cfg)
    assert isinstance(snn, SpikingLSTM) and snn.cfg == cfg
    assert snn.layers[0].weight_x.dtype == F64
    H = 5
    for src, dst in zip(hard.layers, snn.layers, strict=True):
        assert torch.equal(src.weight_x, dst.weight_x) and torch.equal(src.weight_h, dst.weight_h)
        V = {k: float(v.detach()) for k, v in src.V.items()}
        for key in dst.theta:
            assert float(dst.theta[key].detach()) == V[key]
        assert all(float(lam.detach()) == 1.0 and not lam.requires_grad for lam in dst.leak.values())
        for k, gate in enumerate(GATES):
            block = slice(k * H, (k + 1) * H)
            spiking = gate in ("f", "o") or (gate == "i" and nonspiking == "g")
            offset = 0.0 if gate == "g" else V[gate] / 2 + (V[gate] / (2 * T) if spiking and shift else 0.0)
            assert torch.equal(dst.bias[block], src.bias[block] + offset), gate
    for key, value in hard.head.state_dict().items():
        assert torch.equal(snn.head.state_dict()[key], value)


@pytest.mark.parametrize("shift", [True, False])
def test_converted_first_element_rates_equal_if_closed_form(shift: bool) -> None:
    """At element 1 (h(0) = 0) the converted f, o rates are the IF closed form of the source's
    hard-sigmoid pre-activation: (1/T)·clip(floor(T/θ·(z + θ/2 + shift)), 0, T)."""
    T = 6
    hard = hard_model(4)
    snn = convert_hard_to_spiking(hard, hard.cfg.replace(spiking=True, T=T, shift=shift))
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 1, 3, generator=gen, dtype=F64)
    _, trace = snn(x, record=True)
    layer = hard.layers[0]
    z = x[:, 0] @ layer.weight_x.T.detach() + layer.bias.detach()
    H = 5
    for k, gate in ((0, "f"), (3, "o")):
        theta = float(layer.V[gate].detach())
        arg = T / theta * (z[:, k * H:(k + 1) * H] + theta / 2 + (theta / (2 * T) if shift else 0.0))
        keep = (arg - torch.round(arg)).abs() > 1e-9
        expected = torch.clamp(torch.floor(arg), 0, T) / T
        rate = trace[0][gate][:, 0].mean(1)
        assert torch.equal(rate[keep], expected[keep]), gate
    g_expected = torch.clamp(z[:, 2 * H:3 * H] / float(layer.V["g"].detach()), -1, 1)
    torch.testing.assert_close(trace[0]["g"][:, 0, 0], g_expected, rtol=0, atol=1e-13)


def test_conversion_approaches_source_as_T_grows() -> None:
    """Readout error of the converted model against the source shrinks with T (one element)."""
    hard = hard_model(5)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(128, 1, 3, generator=gen, dtype=F64)
    target = hard.readout(x)
    errors = []
    for T in (2, 8, 32):
        snn = convert_hard_to_spiking(hard, hard.cfg.replace(spiking=True, T=T))
        _, trace = snn(x, record=True)
        errors.append((trace[0]["readout"] - target).abs().mean().item())
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize(("nonspiking", "shift", "T_from", "T_to"),
                         [("g", True, 4, 2), ("i", True, 2, 8), ("g", False, 4, 2), ("i", False, 3, 1)])
def test_retimed_conversion_is_the_conversion_at_the_new_T(nonspiking: str, shift: bool, T_from: int,
                                                           T_to: int) -> None:
    """A conversion schedule: the model converted at T_from and re-timed to T_to is the model
    converted at T_to (every tensor; biases to float64 rounding), after θ and λ were trained."""
    hard = hard_model(6, num_layers=2, head_hidden=4)
    with torch.no_grad():
        for layer in hard.layers:
            for k, v in enumerate(layer.V.values()):
                v.fill_(0.6 + 0.15 * k)  # thresholds that differ per gate
    cfg = hard.cfg.replace(spiking=True, T=T_from, nonspiking_gate=nonspiking, shift=shift)
    retimed = retime_spiking(convert_hard_to_spiking(hard, cfg), T_to)
    direct = convert_hard_to_spiking(hard, cfg.replace(T=T_to))
    assert retimed.cfg == direct.cfg and retimed.cfg.T == T_to
    ours, theirs = retimed.state_dict(), direct.state_dict()
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=1e-15, msg=key)
    x = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(4), dtype=F64)
    torch.testing.assert_close(retimed(x), direct(x), rtol=0, atol=1e-12)
    with pytest.raises(UserError, match="T must be"):
        retime_spiking(direct, 0)


def test_conversion_rejects_mismatched_configs() -> None:
    hard = hard_model(0)
    with pytest.raises(UserError):
        convert_hard_to_spiking(hard, hard.cfg)
    with pytest.raises(UserError):
        convert_hard_to_spiking(hard, hard.cfg.replace(spiking=True, hidden_size=7))


def test_from_scratch_spiking_init() -> None:
    """build_model(spiking) = conversion of a fresh hard LSTM: θ = 1, λ = 1, offsets in the bias."""
    cfg = ModelConfig(input_size=3, num_classes=4, hidden_size=5, spiking=True, T=4)
    torch.manual_seed(7)
    snn = build_model(cfg)
    torch.manual_seed(7)
    hard = build_model(cfg.replace(spiking=False))
    converted = convert_hard_to_spiking(hard, cfg)
    assert snn.state_dict().keys() == converted.state_dict().keys()
    for key, value in snn.state_dict().items():
        if not key.startswith("head"):
            assert torch.equal(value, converted.state_dict()[key]), key
    roundtrip = build_model(ModelConfig.from_dict(cfg.to_dict()))
    roundtrip.load_state_dict(snn.state_dict())
    x = torch.randn(2, 5, 3)
    assert torch.equal(roundtrip(x), snn(x))

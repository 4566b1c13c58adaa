"""The spiking LSTM: diagonal schedule == naive loop, cell semantics, lengths, inputs, gradients."""

from __future__ import annotations

import itertools

import pytest
import torch

from snnhw.errors import UserError
from snnhw.model import ModelConfig, SpikingLSTM, build_model
from snnhw.model.spiking_lstm import TRACE_KEYS

F64 = torch.float64


def make(seed: int = 0, **kw: object) -> SpikingLSTM:
    """A float64 spiking model with randomised θ and λ (so that every parameter matters)."""
    base = dict(input_size=3, num_classes=4, hidden_size=6, spiking=True, T=3)
    base.update(kw)
    torch.manual_seed(seed)
    model = build_model(ModelConfig(**base)).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.weight_x.mul_(3.0)
            layer.weight_h.mul_(2.0)
            for th in layer.theta.values():
                th.uniform_(0.5, 1.5)
            for lam in layer.leak.values():
                lam.uniform_(0.7, 1.1)
    return model


def inputs(seed: int, B: int = 5, N: int = 7, D: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, D, generator=gen, dtype=F64)
    lengths = torch.randint(1, N + 1, (B,), generator=gen)
    lengths[0] = N
    return x, lengths


CASES = [(ns, T, 2, True) for ns, T in itertools.product(["g", "i"], [1, 3, 9])] + [("g", 2, 1, False), ("i", 4, 1, False)]


@pytest.mark.parametrize(("nonspiking", "T", "layers", "shift"), CASES)
def test_diagonal_equals_naive_exactly(nonspiking: str, T: int, layers: int, shift: bool) -> None:
    """The step-by-step diagonal schedule (``forward_legacy``) against the naive loop: float64
    logits and every trace tensor identical; gradients equal to 1e-12 (T = 9 > N too). The fast
    path (``forward``) is compared with ``forward_legacy`` in test_spiking_speed_equivalence.py."""
    model = make(T, nonspiking_gate=nonspiking, T=T, num_layers=layers, shift=shift, head_hidden=5 if layers == 2 else 0)
    x, lengths = inputs(T, N=7)
    logits_d, trace_d = model.forward_legacy(x, lengths, record=True)
    logits_n, trace_n = model.forward_reference(x, lengths, record=True)
    assert torch.equal(logits_d, logits_n)
    for layer_d, layer_n in zip(trace_d, trace_n, strict=True):
        assert set(layer_d) == set(TRACE_KEYS) | {"readout"}
        for key in layer_d:
            assert torch.equal(layer_d[key], layer_n[key]), key
    assert trace_d[0]["h"].abs().sum() > 0
    torch.testing.assert_close(model.forward_reference(x, lengths, bitexact=False), logits_d, rtol=0, atol=1e-12)
    params = [p for p in model.parameters() if p.requires_grad]
    grads_d = torch.autograd.grad(model.forward_legacy(x, lengths).square().sum(), params)
    grads_n = torch.autograd.grad(model.forward_reference(x, lengths).square().sum(), params)
    for gd, gn in zip(grads_d, grads_n, strict=True):
        torch.testing.assert_close(gd, gn, rtol=0, atol=1e-12)
    assert any(g.abs().sum() > 0 for g in grads_d)


def reference_cells(model: SpikingLSTM, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """docs/model.md ("Spiking LSTM") written out scalar by scalar (python floats), for one layer, direct input."""
    layer, T, cfg = model.layers[0], model.cfg.T, model.cfg
    B, N, _ = x.shape
    H = cfg.hidden_size
    wx, wh, b = layer.weight_x.tolist(), layer.weight_h.tolist(), layer.bias.tolist()
    th = {k: float(v.detach()) for k, v in layer.theta.items()}
    lam = {k: float(v.detach()) for k, v in layer.leak.items()}
    spiking_i = cfg.nonspiking_gate == "g"
    out = {k: torch.zeros(B, N, T, H, dtype=F64) for k in ("f", "i", "g", "o", "c", "h", "cell")}

    def binary(u: float, z: float, key: str) -> tuple[float, float]:
        u = lam[key] * u + z
        s = 1.0 if u > th[key] else 0.0
        return s, u - th[key] * s

    def ternary(u: float, y: float, key: str, lam_key: str) -> tuple[float, float]:
        if cfg.shift:
            y = y + th[key] / (2 * T) if y > 0 else (y - th[key + "_neg"] / (2 * T) if y < 0 else y)
        u = lam[lam_key] * u + y
        if u > th[key]:
            return 1.0, u - th[key]
        if u < -th[key + "_neg"]:
            return -1.0, u + th[key + "_neg"]
        return 0.0, u

    for bi in range(B):
        h_prev = [[0.0] * H for _ in range(T)]
        c_prev = [[0.0] * H for _ in range(T)]
        for n in range(N):
            mem = {k: [0.0] * H for k in ("f", "ig", "o", "c")}
            for t in range(T):
                h_new, c_new = [0.0] * H, [0.0] * H
                for j in range(H):
                    z = []
                    for gate in range(4):
                        row = gate * H + j
                        acc = sum(wx[row][d] * float(x[bi, n, d]) for d in range(x.shape[2]))
                        acc += sum(wh[row][m] * h_prev[t][m] for m in range(H))
                        z.append(acc + b[row])
                    s_f, mem["f"][j] = binary(mem["f"][j], z[0], "f")
                    if spiking_i:
                        i, mem["ig"][j] = binary(mem["ig"][j], z[1], "i")
                        g = min(max(z[2] / th["g"], -1.0), 1.0)
                    else:
                        i = min(max(z[1] / th["i"], 0.0), 1.0)
                        g, mem["ig"][j] = ternary(mem["ig"][j], z[2], "g", "g")
                    s_o, mem["o"][j] = binary(mem["o"][j], z[3], "o")
                    c = s_f * c_prev[t][j] + i * g
                    s_c, mem["c"][j] = ternary(mem["c"][j], c, "c", "c")
                    h_new[j], c_new[j] = s_o * s_c, c
                    for key, val in (("f", s_f), ("i", i), ("g", g), ("o", s_o), ("c", s_c), ("h", s_o * s_c), ("cell", c)):
                        out[key][bi, n, t, j] = val
                h_prev[t], c_prev[t] = h_new, c_new
    return [out]


@pytest.mark.parametrize(("nonspiking", "shift"), [("g", True), ("i", True), ("i", False)])
def test_cells_follow_the_written_semantics(nonspiking: str, shift: bool) -> None:
    """Spikes equal to a scalar transcription of the spec; values to float64 rounding."""
    model = make(11, nonspiking_gate=nonspiking, T=3, hidden_size=4, shift=shift)
    x, _ = inputs(3, B=2, N=5)
    _, trace = model(x, record=True)
    ref = reference_cells(model, x)[0]
    for key in ("f", "o", "c", "h", "i" if nonspiking == "g" else "g"):
        assert torch.equal(trace[0][key], ref[key]), key
    for key in ("i", "g", "cell"):
        torch.testing.assert_close(trace[0][key], ref[key], rtol=0, atol=1e-12)
    assert 0 < trace[0]["h"].abs().mean() < 1
    readout = ref["h"][:, -1].mean(1)
    torch.testing.assert_close(trace[0]["readout"], readout, rtol=0, atol=1e-15)


def test_variable_lengths_read_out_at_own_last_element() -> None:
    """A sample of length L gives the same logits as its first L elements alone; padding is ignored."""
    model = make(5, num_layers=2, T=4, hidden_size=12)
    x, lengths = inputs(8, B=6, N=9)
    lengths = torch.tensor([9, 1, 4, 7, 2, 9])
    logits, trace = model(x, lengths, record=True)
    assert len({tuple(r.tolist()) for r in trace[-1]["readout"]}) == 6
    for b in range(6):
        _, trace_alone = model(x[b:b + 1, : int(lengths[b])], record=True)
        assert torch.equal(trace[-1]["readout"][b:b + 1], trace_alone[-1]["readout"])
    x_noisy = x.clone()
    for b in range(6):
        x_noisy[b, int(lengths[b]):] = 1e3
    assert torch.equal(model(x_noisy, lengths), logits)


def test_readout_and_head() -> None:
    model = make(2, head_hidden=3, T=4)
    x, lengths = inputs(1)
    logits, trace = model(x, lengths, record=True)
    h = trace[-1]["h"]
    r = torch.stack([h[b, int(lengths[b]) - 1].mean(0) for b in range(x.shape[0])])
    assert torch.equal(trace[-1]["readout"], r)
    assert torch.equal(logits, model.head.fc2(torch.relu(model.head.fc1(r))))
    assert set(torch.unique(h).tolist()) <= {-1.0, 0.0, 1.0}


def test_rate_encoding_and_spikes_in() -> None:
    model = make(3, encoding="rate", T=5)
    x, lengths = inputs(4)
    torch.manual_seed(123)
    spikes = model.encode(x)
    assert spikes.shape == (5, 7, 5, 3)
    assert set(torch.unique(spikes).tolist()) <= {-1.0, 0.0, 1.0}
    assert bool((spikes * torch.sign(x).unsqueeze(2) >= 0).all())
    torch.manual_seed(123)
    assert torch.equal(model(x, lengths), model(x, lengths, spikes_in=spikes))
    assert torch.equal(model(x, lengths, spikes_in=spikes), model.forward_reference(x, lengths, spikes_in=spikes))
    big = torch.full((1, 2000, 1), 0.3, dtype=F64)
    rate = build_model(ModelConfig(input_size=1, num_classes=2, spiking=True, T=4, encoding="rate")).encode(big)
    assert rate.mean().item() == pytest.approx(0.3, abs=0.02)


def test_direct_spikes_in_equals_direct_input_when_binary() -> None:
    """Direct input that is already a spike pattern constant over t == the same spikes_in."""
    model = make(4, T=3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(-1, 2, (3, 6, 3), generator=gen).to(F64)
    spikes = x.unsqueeze(2).expand(-1, -1, 3, -1)
    assert torch.equal(model(x), model(x, spikes_in=spikes))


@pytest.mark.parametrize(("train_theta", "train_leak"), [(True, True), (True, False), (False, True), (False, False)])
def test_gradients_reach_theta_and_leak_only_when_trainable(train_theta: bool, train_leak: bool) -> None:
    for nonspiking in ("g", "i"):
        model = make(6, train_theta=train_theta, train_leak=train_leak, nonspiking_gate=nonspiking, T=3)
        x, lengths = inputs(2)
        model(x, lengths).square().sum().backward()
        for layer in model.layers:
            for th in layer.theta.values():
                assert th.requires_grad == train_theta
                assert (th.grad is not None and th.grad.abs() > 0) == train_theta
            for lam in layer.leak.values():
                assert lam.requires_grad == train_leak
                assert (lam.grad is not None and lam.grad.abs() > 0) == train_leak
            assert layer.weight_h.grad.abs().sum() > 0


def test_parameter_names_and_shapes() -> None:
    cfg = ModelConfig(input_size=3, num_classes=4, hidden_size=6, spiking=True, num_layers=2)
    for nonspiking, theta_keys, leak_keys in (
        ("g", {"f", "i", "g", "o", "c", "c_neg"}, {"f", "i", "o", "c"}),
        ("i", {"f", "i", "g", "g_neg", "o", "c", "c_neg"}, {"f", "g", "o", "c"}),
    ):
        model = build_model(cfg.replace(nonspiking_gate=nonspiking))
        assert isinstance(model, SpikingLSTM) and model.cfg.nonspiking_gate == nonspiking
        for k, layer in enumerate(model.layers):
            assert layer.weight_x.shape == (24, 3 if k == 0 else 6)
            assert layer.weight_h.shape == (24, 6) and layer.bias.shape == (24,)
            assert set(layer.theta) == theta_keys and set(layer.leak) == leak_keys
            assert all(p.shape == () and float(p.detach()) > 0 for p in layer.theta.values())
        assert model.head.fc1.out_features == 4


def test_constrain_parameters() -> None:
    model = make(0)
    with torch.no_grad():
        model.layers[0].theta["f"].fill_(-1.0)
        model.layers[0].leak["o"].fill_(-0.5)
    model.layers[0].constrain_parameters()
    assert float(model.layers[0].theta["f"].detach()) > 0 and float(model.layers[0].leak["o"].detach()) == 0.0


def test_user_errors() -> None:
    model = make(0)
    x, _ = inputs(0)
    with pytest.raises(UserError):
        model(x[:, :, :2])
    with pytest.raises(UserError):
        model(x, torch.tensor([0, 1, 1, 1, 1]))
    with pytest.raises(UserError):
        model(x, torch.tensor([8, 1, 1, 1, 1]))
    with pytest.raises(UserError):
        model(x, spikes_in=torch.zeros(5, 7, 2, 3, dtype=F64))
    with pytest.raises(UserError):
        SpikingLSTM(ModelConfig(input_size=3, num_classes=4))

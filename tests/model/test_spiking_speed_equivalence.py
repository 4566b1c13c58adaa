"""The fast wavefront (``SpikingLSTM.forward``, :mod:`snnhw.model.wavefront`) against the previous
implementation (``forward_legacy``, per-step autograd composition): same outputs, loss and
parameter gradients to float64 rounding, on small random models that exercise every parameter.
Every test runs twice: with the compiled neuron kernels (:mod:`snnhw.model.fused_cells`) and
with the PyTorch operators they replace.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from snnhw.model import ModelConfig, SpikingLSTM, build_model, fused_cells, wavefront

F64 = torch.float64
RTOL = 1e-10
"""Relative tolerance on outputs and gradients (float64; observed differences are ~1e-13 of
each tensor's largest entry: the backward pass sums the same terms in another order)."""


@pytest.fixture(params=["compiled", "pytorch"], autouse=True)
def cells(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which implementation of the neuron updates the fast path uses in this test."""
    monkeypatch.setenv("SNNHW_FUSED_CELLS", "1" if request.param == "compiled" else "0")
    if request.param == "compiled" and fused_cells.library() is None:
        pytest.skip("no C compiler: the compiled neuron kernels are unavailable")
    return str(request.param)


def make(seed: int, leak: str = "lif", **kw: object) -> SpikingLSTM:
    """A float64 model with large weights and randomised θ (and λ < 1 for "lif", λ = 1 for "if")."""
    base: dict[str, object] = {"input_size": 3, "num_classes": 4, "hidden_size": 6, "spiking": True, "T": 3}
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
                if leak == "lif":
                    lam.uniform_(0.6, 0.99)
                else:
                    lam.fill_(1.0)
    return model


def inputs(seed: int, B: int = 5, N: int = 7, D: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random sequences, variable lengths (the first one full), integer labels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, D, generator=gen, dtype=F64)
    lengths = torch.randint(1, N + 1, (B,), generator=gen)
    lengths[0] = N
    y = torch.randint(0, 4, (B,), generator=gen)
    return x, lengths, y


def run(model: SpikingLSTM, fn: str, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor,
        seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Logits, cross-entropy loss and the gradient of every trainable parameter (same rate draws)."""
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(seed)
    logits = getattr(model, fn)(x, lengths)
    loss = torch.nn.functional.cross_entropy(logits, y) + 0.1 * logits.square().mean()
    grads = torch.autograd.grad(loss, params)
    return logits.detach(), loss.detach(), [g.detach() for g in grads]


def assert_same(model: SpikingLSTM, new: tuple, ref: tuple) -> None:
    logits_n, loss_n, grads_n = new
    logits_r, loss_r, grads_r = ref
    torch.testing.assert_close(logits_n, logits_r, rtol=RTOL, atol=1e-14)
    torch.testing.assert_close(loss_n, loss_r, rtol=RTOL, atol=0.0)
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    assert len(grads_n) == len(grads_r) == len(names)
    # an entry that is a sum of cancelling terms (or exactly 0 in one order) keeps an absolute
    # error of the size of its terms: the absolute tolerance is RTOL times the largest gradient
    scale = max(float(g.abs().max()) for g in grads_r)
    for name, g_n, g_r in zip(names, grads_n, grads_r, strict=True):
        torch.testing.assert_close(g_n, g_r, rtol=RTOL, atol=RTOL * scale, msg=lambda m, name=name: f"{name}: {m}")


CASES = list(itertools.product([1, 2, 4], [1, 2], ["direct", "rate"], ["lif", "if"], ["g", "i"]))


@pytest.mark.parametrize(("T", "layers", "encoding", "leak", "nonspiking"), CASES)
def test_fast_path_equals_legacy(T: int, layers: int, encoding: str, leak: str, nonspiking: str) -> None:
    """Logits, loss and every parameter gradient (weights, biases, θ, λ, head) to rtol 1e-10."""
    seed = 100 * T + 10 * layers + len(encoding) + len(leak) + ord(nonspiking)
    model = make(seed, leak, T=T, num_layers=layers, encoding=encoding, nonspiking_gate=nonspiking,
                 head_hidden=5 if layers == 2 else 0)
    x, lengths, y = inputs(seed)
    new = run(model, "forward", x, lengths, y)
    ref = run(model, "forward_legacy", x, lengths, y)
    assert_same(model, new, ref)
    assert all(float(g.abs().sum()) > 0 for g in ref[2][:3]), "layer 1 receives no gradient: a weak case"


@pytest.mark.parametrize(("nonspiking", "T", "N"), [("g", 3, 7), ("i", 3, 7), ("g", 9, 4), ("i", 5, 1)])
def test_fast_path_without_shift_and_ramps(nonspiking: str, T: int, N: int) -> None:
    """No shift; T > N (every diagonal is a ramp) and N = 1."""
    model = make(T + N, T=T, nonspiking_gate=nonspiking, shift=False, num_layers=2)
    x, lengths, y = inputs(T, N=N)
    assert_same(model, run(model, "forward", x, lengths, y), run(model, "forward_legacy", x, lengths, y))


@pytest.mark.parametrize("nonspiking", ["g", "i"])
def test_trace_and_no_grad_path(nonspiking: str) -> None:
    """The recorded trace: spikes identical, values to rounding; the no-grad forward (ring buffers,
    no histories) gives the same logits as the training forward."""
    model = make(7, T=4, nonspiking_gate=nonspiking, num_layers=2)
    x, lengths, _ = inputs(3)
    logits_n, trace_n = model(x, lengths, record=True)
    logits_r, trace_r = model.forward_legacy(x, lengths, record=True)
    torch.testing.assert_close(logits_n, logits_r, rtol=RTOL, atol=1e-14)
    spikes = {"f", "o", "c", "h", "i" if nonspiking == "g" else "g"}
    for layer_n, layer_r in zip(trace_n, trace_r, strict=True):
        assert set(layer_n) == set(layer_r)
        for key in layer_n:
            assert layer_n[key].shape == layer_r[key].shape, key
            if key in spikes:
                assert torch.equal(layer_n[key], layer_r[key]), key
            else:
                torch.testing.assert_close(layer_n[key], layer_r[key], rtol=RTOL, atol=1e-13)
    with torch.no_grad():
        assert torch.equal(model(x, lengths), model(x, lengths, record=True)[0])
        assert torch.equal(model(x, lengths), logits_n.detach())


def test_two_graphs_before_backward_and_frozen_parameters() -> None:
    """Two forward passes before one backward (the history workspace must not be shared), and
    θ/λ frozen (no gradient asked for them)."""
    model = make(5, T=3, num_layers=2, train_theta=False, train_leak=False)
    x, lengths, _ = inputs(4)
    x2, lengths2, _ = inputs(5)

    def loss(fn: str) -> torch.Tensor:
        f = getattr(model, fn)
        return f(x, lengths).square().sum() + 0.5 * f(x2, lengths2).square().sum()

    params = [p for p in model.parameters() if p.requires_grad]
    assert all(not th.requires_grad for layer in model.layers for th in layer.theta.values())
    grads_n = torch.autograd.grad(loss("forward"), params)
    grads_r = torch.autograd.grad(loss("forward_legacy"), params)
    scale = max(float(g.abs().max()) for g in grads_r)
    for g_n, g_r in zip(grads_n, grads_r, strict=True):
        torch.testing.assert_close(g_n, g_r, rtol=RTOL, atol=RTOL * scale)


def test_float32_training_step_matches() -> None:
    """float32 at a realistic width: logits equal, gradients to float32 rounding."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=9, num_classes=6, hidden_size=32, spiking=True, T=4))
    x = torch.randn(8, 20, 9)
    y = torch.randint(0, 6, (8,))
    lengths = torch.full((8,), 20)
    new = run(model, "forward", x, lengths, y)
    ref = run(model, "forward_legacy", x, lengths, y)
    torch.testing.assert_close(new[0], ref[0], rtol=1e-5, atol=1e-6)
    scale = max(float(g.abs().max()) for g in ref[2])
    for g_n, g_r in zip(new[2], ref[2], strict=True):
        torch.testing.assert_close(g_n, g_r, rtol=1e-4, atol=1e-5 * scale)


def test_comparison_detects_a_perturbed_surrogate(monkeypatch: pytest.MonkeyPatch, cells: str) -> None:
    """The comparison is sharp enough to see a 1 % change of the surrogate's peak γ in the fast path
    (in the PyTorch operators, or in the constants the compiled kernels receive)."""
    model = make(11, T=4, num_layers=1)
    x, lengths, y = inputs(11)
    ref = run(model, "forward_legacy", x, lengths, y)
    assert_same(model, run(model, "forward", x, lengths, y), ref)
    if cells == "pytorch":
        original = wavefront._tri

        def tri_off(u: torch.Tensor, th: torch.Tensor, peak: torch.Tensor, slope: torch.Tensor,
                    out: torch.Tensor) -> torch.Tensor:
            return original(u, th, peak * 1.01, slope * 1.01, out)

        monkeypatch.setattr(wavefront, "_tri", tri_off)
    else:
        constants = wavefront._cell_constants

        def constants_off(spec: wavefront.WavefrontSpec, p: object, dtype: torch.dtype) -> torch.Tensor:
            cst = constants(spec, p, dtype).clone()  # type: ignore[arg-type]
            nb = 3 if spec.spiking_i else 2
            cst[2 * nb:4 * nb] *= 1.01  # γ/θ, γ/θ² of the binary gates
            for n in range(2):  # and of both ternary neurons
                base = 4 * nb + 3 + 10 * n
                cst[base + 6:base + 10] *= 1.01
            return cst

        monkeypatch.setattr(wavefront, "_cell_constants", constants_off)
    with pytest.raises(AssertionError):
        assert_same(model, run(model, "forward", x, lengths, y), ref)


def test_compiled_kernels_run_when_enabled(monkeypatch: pytest.MonkeyPatch, cells: str) -> None:
    """The switch works: training and no-grad passes go through the compiled kernels exactly
    when they are on (a recording pass always takes the PyTorch operators)."""
    calls: list[bool] = []
    original = wavefront._fused_forward

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(True)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wavefront, "_fused_forward", spy)
    model = make(4, T=2)
    x, lengths, y = inputs(4)
    run(model, "forward", x, lengths, y)
    with torch.no_grad():
        model(x, lengths)
    assert len(calls) == (2 if cells == "compiled" else 0)
    model(x, lengths, record=True)
    assert len(calls) == (2 if cells == "compiled" else 0)


@pytest.mark.parametrize(("nonspiking", "lam"), [("g", 1.0), ("i", 0.5)])
def test_exact_ties_at_the_threshold(nonspiking: str, lam: float) -> None:
    """Dyadic weights, inputs, θ = 1 and λ ∈ {1, 1/2}: every sum is exact, membranes hit θ and
    −θ− exactly, so ``[U > θ]`` vs ``[U ≥ θ]`` (and the other tie rules) matter. Both paths must
    agree exactly on the logits."""
    model = make(3, T=4, nonspiking_gate=nonspiking, num_layers=2, hidden_size=8)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-8, 9, p.shape, generator=gen).to(F64) / 8)
        for layer in model.layers:
            for th in layer.theta.values():
                th.fill_(1.0)
            for leak in layer.leak.values():
                leak.fill_(lam)
    x = torch.randint(-8, 9, (6, 9, 3), generator=gen).to(F64) / 8
    z1 = x @ model.layers[0].weight_x.t() + model.layers[0].bias  # the binary membranes at t = 0
    assert int((z1 == 1.0).sum()) > 0, "no tie at the threshold: the case tests nothing"
    logits_n, trace_n = model(x, record=True)
    logits_r, trace_r = model.forward_legacy(x, record=True)
    assert torch.equal(logits_n, logits_r)
    assert torch.equal(model(x), logits_r)  # without the trace: the compiled kernels, if on
    for layer_n, layer_r in zip(trace_n, trace_r, strict=True):
        for key in layer_n:
            assert torch.equal(layer_n[key], layer_r[key]), key


def test_second_backward_is_refused() -> None:
    """The histories are reused after the backward pass: a second one must fail loudly."""
    model = make(2, T=2)
    x, lengths, _ = inputs(2)
    loss = model(x, lengths).square().sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()

"""The compiled neuron kernels (:mod:`snnhw.model.fused_cells`): built once into a cache, a
warning and the PyTorch path without a compiler; and the bfloat16 recurrent products
(:func:`snnhw.model.wavefront.recurrent_bf16`) on both paths."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from train_fixtures import write_npz

import snnhw.train.trainer as trainer
from snnhw.data.registry import load_dataset
from snnhw.errors import UserError
from snnhw.model import ModelConfig, SpikingLSTM, build_model, fused_cells
from snnhw.model.wavefront import recurrent_bf16
from snnhw.train.seed import seed_everything


@pytest.fixture
def fresh_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A new cache folder and a module that has not tried to load the kernels yet."""
    monkeypatch.setenv("SNNHW_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SNNHW_FUSED_CELLS", "1")
    monkeypatch.setattr(fused_cells, "_tried", False)
    monkeypatch.setattr(fused_cells, "_library", None)
    return tmp_path


def test_kernels_are_compiled_once_into_the_cache(fresh_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if fused_cells._compiler() is None:
        pytest.skip("no C compiler")
    assert fused_cells.kernels(torch.float32) is not None
    built = list(fresh_build.glob("wavefront_cells-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    # a new process (module state reset) finds it: no second compilation
    monkeypatch.setattr(fused_cells, "_tried", False)
    monkeypatch.setattr(fused_cells, "_library", None)
    calls: list[list[str]] = []
    run = fused_cells.subprocess.run

    def spy(args: list[str], **kwargs: object) -> object:
        calls.append(args)
        return run(args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(fused_cells.subprocess, "run", spy)
    assert fused_cells.kernels(torch.float64) is not None
    assert calls and all("-o" not in args for args in calls)  # asked the version, compiled nothing
    assert built[0].stat().st_mtime_ns == stamp
    assert fused_cells.kernels(torch.float16) is None  # only float32 and float64 kernels
    assert fused_cells.kernels(torch.float32, "meta") is None  # and CPU tensors only


def failing_compiler(monkeypatch: pytest.MonkeyPatch, fails: Callable[[list[str]], bool],
                     error: str) -> list[list[str]]:
    """The compiler rejects the builds whose arguments ``fails`` (with ``error``); the list
    filled with the arguments of every build tried."""
    run = fused_cells.subprocess.run
    builds: list[list[str]] = []

    def compiler(args: list[str], **kwargs: object) -> object:
        if "-o" in args:
            builds.append(args)
            if fails(args):
                return subprocess.CompletedProcess(args, 1, "", error)
        return run(args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(fused_cells.subprocess, "run", compiler)
    return builds


def test_a_compiler_without_target_clones_builds_one_version(fresh_build: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiler that rejects the multiversioning attribute gets a second, plain build."""
    if fused_cells._compiler() is None:
        pytest.skip("no C compiler")
    builds = failing_compiler(monkeypatch, lambda args: "-DSNNHW_NO_CLONES" not in args,
                              "error: unknown attribute 'target_clones'")
    assert fused_cells.kernels(torch.float32) is not None
    assert [("-DSNNHW_NO_CLONES" in args) for args in builds] == [False, True]
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=3, num_classes=3, hidden_size=5, spiking=True, T=3))
    x = torch.randn(4, 6, 3)
    compiled = model(x)  # a training pass: the compiled kernels
    monkeypatch.setenv("SNNHW_FUSED_CELLS", "0")
    # the same values: the neurons bit for bit, the recurrent products (sparse there, GEMMs
    # here) summed in another order
    torch.testing.assert_close(compiled, model(x), rtol=1e-6, atol=1e-6)


def test_a_compiler_without_openmp_builds_serial_kernels(fresh_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiler that rejects ``-fopenmp`` gets a build without it, whose kernels run on the
    calling thread whatever :func:`fused_cells.kernel_threads` says."""
    if fused_cells._compiler() is None or not torch.backends.openmp.is_available():
        pytest.skip("no C compiler, or a PyTorch without OpenMP (no OpenMP build is tried)")
    builds = failing_compiler(monkeypatch, lambda args: "-fopenmp" in args, "error: unsupported option '-fopenmp'")
    assert fused_cells.kernels(torch.float32) is not None
    assert [("-fopenmp" in args, "-DSNNHW_NO_CLONES" in args) for args in builds] == \
        [(True, False), (True, True), (False, False)]
    assert not hasattr(fused_cells.library(), "omp_get_thread_num")
    monkeypatch.setattr(fused_cells, "kernel_threads", lambda: 2)
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=3, num_classes=3, hidden_size=32, spiking=True, T=3))
    model(torch.randn(4, 6, 3)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("gate", ["g", "i"])
def test_gradients_do_not_depend_on_the_kernel_threads(monkeypatch: pytest.MonkeyPatch, gate: str) -> None:
    """The compiled backward kernel and the sparse products on 1, 2 or 3 threads (columns or
    rows split between them): the same loss gradients bit for bit, θ and λ included."""
    monkeypatch.setenv("SNNHW_FUSED_CELLS", "1")
    if fused_cells.library() is None:
        pytest.skip("no C compiler")
    grads = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(fused_cells, "kernel_threads", lambda n=threads: n)
        torch.manual_seed(0)
        model = build_model(ModelConfig(input_size=3, num_classes=3, hidden_size=64, spiking=True, T=3,
                                        nonspiking_gate=gate))
        x = torch.randn(16, 7, 3)
        torch.nn.functional.cross_entropy(model(x), torch.arange(16) % 3).backward()
        grads.append([p.grad.clone() for p in model.parameters()])  # type: ignore[union-attr]
    for other in grads[1:]:
        assert all(torch.equal(a, b) for a, b in zip(grads[0], other, strict=True))


def test_without_a_compiler_training_falls_back_with_one_warning(fresh_build: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-snnhw")
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=3, num_classes=3, hidden_size=4, spiking=True, T=2))
    x = torch.randn(2, 5, 3)
    with pytest.warns(RuntimeWarning, match="slower PyTorch path"):
        model(x).sum().backward()
    assert fused_cells.library() is None  # no second attempt, no second warning
    assert not list(fresh_build.glob("*.so"))


def test_switched_off_it_neither_compiles_nor_warns(fresh_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNHW_FUSED_CELLS", "0")
    assert fused_cells.library() is None
    assert not fused_cells._tried and not list(fresh_build.glob("*.so"))


def _dyadic_model(nonspiking_gate: str) -> SpikingLSTM:
    """Weights on a 1/8 grid with few units: every recurrent sum h·Whᵀ is exact in bfloat16."""
    torch.manual_seed(3)
    model = build_model(ModelConfig(input_size=3, num_classes=3, hidden_size=6, spiking=True, T=3,
                                    nonspiking_gate=nonspiking_gate))
    assert isinstance(model, SpikingLSTM)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for layer in model.layers:
            for w in (layer.weight_x, layer.weight_h, layer.bias):
                w.copy_(torch.randint(-12, 13, w.shape, generator=gen).float() / 8)
    return model


def _step(model: SpikingLSTM, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    logits = model(x)
    torch.nn.functional.cross_entropy(logits, y).backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("cells", ["1", "0"])
@pytest.mark.parametrize("gate", ["g", "i"])
def test_bf16_recurrent_products(monkeypatch: pytest.MonkeyPatch, cells: str, gate: str) -> None:
    """Forward products exact in bfloat16 give the float32 logits bit for bit; the backward
    products round ∂z to bfloat16, so the gradients move by about 2⁻⁹ of their size (and do
    move: the switch is not a no-op); passes without gradients stay float32."""
    monkeypatch.setenv("SNNHW_FUSED_CELLS", cells)
    model = _dyadic_model(gate)
    gen = torch.Generator().manual_seed(5)
    x = torch.randint(-8, 9, (6, 9, 3), generator=gen).float() / 4
    y = torch.randint(0, 3, (6,), generator=gen)
    logits32, grads32 = _step(model, x, y)
    with recurrent_bf16():
        logits16, grads16 = _step(model, x, y)
    assert torch.equal(logits16, logits32)
    for g16, g32 in zip(grads16, grads32, strict=True):
        torch.testing.assert_close(g16, g32, rtol=2e-2, atol=2e-2 * float(g32.abs().max()))
    assert any(not torch.equal(g16, g32) for g16, g32 in zip(grads16, grads32, strict=True))
    # weights off the bfloat16 grid: a pass without gradients still runs in float32
    with torch.no_grad():
        for layer in model.layers:
            layer.weight_h.add_(torch.randn(layer.weight_h.shape, generator=gen) * 1e-3)
        reference = model(x)
        with recurrent_bf16():
            assert torch.equal(model(x), reference)


def test_fit_bf16_is_recorded_and_refused_for_a_hard_lstm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = load_dataset("npz", str(write_npz(tmp_path / "toy.npz")), seed=0, val_fraction=0.2, progress=False)
    seed_everything(0)
    spiking = build_model(ModelConfig(input_size=3, num_classes=3, hidden_size=8, spiking=True, T=2))
    result = trainer.fit(spiking, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None,
                         progress=False, log=None, bf16=True)
    assert result.settings["recurrent_bf16"] is True
    compiled = fused_cells.library() is not None
    assert result.settings["neuron_kernels"] == ("compiled" if compiled else "pytorch")
    assert result.settings["recurrent_products"] == "bfloat16"
    default = trainer.fit(spiking, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None,
                          progress=False, log=None)
    assert default.settings["recurrent_products"] == ("sparse" if compiled else "dense")
    monkeypatch.setenv("SNNHW_FUSED_CELLS", "0")
    plain = trainer.fit(spiking, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None,
                        progress=False, log=None)
    assert plain.settings["neuron_kernels"] == "pytorch" and "recurrent_bf16" not in plain.settings
    assert plain.settings["recurrent_products"] == "dense"
    hard = build_model(ModelConfig(input_size=3, num_classes=3, hidden_size=8))
    with pytest.raises(UserError, match="spiking models only"):
        trainer.fit(hard, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None, progress=False,
                    log=None, bf16=True)

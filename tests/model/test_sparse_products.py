"""The compiled sparse products (``sparse_products.c`` through :mod:`snnhw.model.fused_cells`):
against dense GEMMs on sparse operands of both dtypes, with column tails that do not fill a
vector block, without a base, exact on dyadic values, and their use by the fast wavefront."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from snnhw.model import ModelConfig, build_model, fused_cells, wavefront


@pytest.fixture
def products(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNHW_FUSED_CELLS", "1")
    if fused_cells.library() is None:
        pytest.skip("no C compiler: the compiled kernels are unavailable")


def sparse(rows: int, cols: int, density: float, gen: torch.Generator, dtype: torch.dtype,
           ternary: bool = False) -> torch.Tensor:
    """A random [rows, cols] matrix with about ``density`` of its entries nonzero."""
    mask = torch.rand(rows, cols, generator=gen) < density
    values = (torch.randint(0, 2, (rows, cols), generator=gen) * 2 - 1).to(dtype) if ternary else \
        torch.randn(rows, cols, generator=gen, dtype=dtype)
    return values * mask


# (rows, K, W): a full vector block of columns (W = 512), blocks and a tail (W = 150, 20), rows
# past a row block of sp_tmm (300 > 128), one row, one column
SHAPES = [(256, 128, 512), (37, 7, 150), (300, 33, 20), (1, 1, 1), (5, 64, 128)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("rows", "K", "W"), SHAPES)
@pytest.mark.parametrize("ternary", [True, False])
def test_sparse_products_equal_dense_gemms(products: None, dtype: torch.dtype, rows: int, K: int, W: int,
                                           ternary: bool) -> None:
    addmm, tmm = fused_cells.sparse_products(dtype)  # type: ignore[misc]
    gen = torch.Generator().manual_seed(rows * 1000 + K * 10 + W)
    a = sparse(rows, K, 0.25, gen, dtype, ternary)
    b = torch.randn(K, W, generator=gen, dtype=dtype)
    base = torch.randn(rows, W, generator=gen, dtype=dtype)
    g = torch.randn(rows, W, generator=gen, dtype=dtype)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    out = torch.full((rows, W), float("nan"), dtype=dtype)
    wavefront._sparse_addmm(addmm, out, base, a, b)
    torch.testing.assert_close(out, torch.addmm(base, a, b), **tol)
    wavefront._sparse_addmm(addmm, out, None, a, b)  # no base: a·b alone
    torch.testing.assert_close(out, a @ b, **tol)
    torch.testing.assert_close(wavefront._sparse_tmm(tmm, a, g), a.t() @ g, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dyadic_values_are_exact_and_zeros_are_skipped(products: None, dtype: torch.dtype) -> None:
    """On a 1/8 grid every partial sum is exact: equal to the GEMM bit for bit. The rows of b
    (and of g) that only zeros of a select never enter the sums, so an infinity there stays out
    (a dense GEMM would give 0·∞ = NaN)."""
    addmm, tmm = fused_cells.sparse_products(dtype)  # type: ignore[misc]
    gen = torch.Generator().manual_seed(5)
    a = sparse(96, 40, 0.3, gen, dtype, ternary=True)
    a[:, 7] = 0  # column 7 of a selects nothing
    a[11] = 0  # nor does row 11
    b = torch.randint(-64, 65, (40, 150), generator=gen).to(dtype) / 8
    base = torch.randint(-64, 65, (96, 150), generator=gen).to(dtype) / 8
    g = torch.randint(-64, 65, (96, 150), generator=gen).to(dtype) / 8
    out = torch.empty(96, 150, dtype=dtype)
    wavefront._sparse_addmm(addmm, out, base, a, b)
    assert torch.equal(out, torch.addmm(base, a, b))
    assert torch.equal(wavefront._sparse_tmm(tmm, a, g), a.t() @ g)
    b[7] = float("inf")
    g[11] = float("inf")
    wavefront._sparse_addmm(addmm, out, base, a, b)
    assert torch.isfinite(out).all()
    assert torch.isfinite(wavefront._sparse_tmm(tmm, a, g)).all()


def test_the_wavefront_runs_its_recurrent_products_through_them(products: None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A training step makes the forward products (h·Whᵀ), the backward ones (∂z·Wh) and one
    Wh gradient with the sparse kernels; switched off (``SNNHW_FUSED_CELLS=0``), none."""
    calls: dict[str, list[int]] = {"addmm": [], "tmm": []}
    addmm, tmm = wavefront._sparse_addmm, wavefront._sparse_tmm

    def spy_addmm(fn: object, out: torch.Tensor, base: object, a: torch.Tensor, b: torch.Tensor) -> None:
        calls["addmm"].append(a.shape[1])
        addmm(fn, out, base, a, b)  # type: ignore[arg-type]

    def spy_tmm(fn: object, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        calls["tmm"].append(a.shape[1])
        return tmm(fn, a, g)

    monkeypatch.setattr(wavefront, "_sparse_addmm", spy_addmm)
    monkeypatch.setattr(wavefront, "_sparse_tmm", spy_tmm)
    torch.manual_seed(0)
    H, N, T = 6, 5, 3
    model = build_model(ModelConfig(input_size=3, num_classes=3, hidden_size=H, spiking=True, T=T))
    model(torch.randn(4, N, 3)).sum().backward()
    D = N + T - 1
    # D − 1 forward products (K = H), D − 1 backward ones (K = 4H), one Wh gradient (K = H)
    assert calls == {"addmm": [H] * (D - 1) + [4 * H] * (D - 1), "tmm": [H]}
    monkeypatch.setenv("SNNHW_FUSED_CELLS", "0")
    calls["addmm"].clear()
    calls["tmm"].clear()
    model(torch.randn(4, N, 3)).sum().backward()
    assert calls == {"addmm": [], "tmm": []}



@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_result_does_not_depend_on_the_threads(products: None, dtype: torch.dtype) -> None:
    """Split over 1, 2, 3 or 8 threads (more than rows or columns for the small shape), every
    output element is one thread's sum in the same order: equal bit for bit."""
    addmm, tmm = fused_cells.sparse_products(dtype)  # type: ignore[misc]
    before = torch.get_num_threads()
    for rows, K, W in [(300, 128, 512), (5, 3, 20)]:
        gen = torch.Generator().manual_seed(rows + K)
        a = sparse(rows, K, 0.25, gen, dtype)
        b, base, g = (torch.randn(*shape, generator=gen, dtype=dtype) for shape in ((K, W), (rows, W), (rows, W)))
        results = []
        try:
            for threads in (1, 2, 3, 8):
                torch.set_num_threads(threads)
                out = torch.full((rows, W), float("nan"), dtype=dtype)
                wavefront._sparse_addmm(addmm, out, base, a, b)
                results.append((out, wavefront._sparse_tmm(tmm, a, g)))
        finally:
            torch.set_num_threads(before)
        for out, t in results[1:]:
            assert torch.equal(out, results[0][0]) and torch.equal(t, results[0][1])


def test_one_openmp_runtime(products: None) -> None:
    """The library is built with OpenMP (it resolves OpenMP's functions through its own
    dependencies) and shares PyTorch's runtime: one ``libgomp`` is mapped into the process (two
    would compete for the cores with spinning threads)."""
    maps = Path("/proc/self/maps")
    if not maps.exists() or not torch.backends.openmp.is_available():
        pytest.skip("Linux with an OpenMP PyTorch only")
    assert hasattr(fused_cells.library(), "omp_get_thread_num")
    gomp = {line.split()[-1] for line in maps.read_text().splitlines() if "libgomp" in line}
    assert len(gomp) == 1, gomp

"""Data-parallel training: K processes train the model one process trains, to float rounding.

Every comparison runs the same seed and global batch size in one process and in two (gloo on
the CPU) and asks for state dicts equal to ``ATOL``. Bit equality is not expected: each process
sums its share of the batch, DDP all-reduces the shares' gradients, and the rows of the batch
are therefore summed in another order than in one process (float addition is not
associative). The observed difference is at most 6e-8 (one float32 ulp or so of weights of
order 1); ``ATOL`` leaves a margin of more than 10x. A wrong gradient weighting is far
beyond it: counting each process's mean loss equally whatever its share moves the weights
by about 5e-2 in these runs, and forgetting that DDP averages (gradients halved) by about
1.5e-5 (less than one might expect: Adam is nearly blind to a uniform gradient scale, which
is why ``test_shard_losses_give_the_single_process_gradient`` checks the gradients
themselves).

The spawned runs cost a few seconds each (two fresh Python processes importing torch).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from snnhw.cli import main
from snnhw.cli.train import DEVICES as CLI_DEVICES
from snnhw.data.base import DataBundle
from snnhw.data.registry import load_dataset
from snnhw.errors import UserError
from snnhw.model import ModelConfig, build_model
from snnhw.train import distributed
from snnhw.train.checkpoint import load_checkpoint
from snnhw.train.seed import seed_everything
from snnhw.train.trainer import TrainResult, _shard_loss, fit, subsample
from train_fixtures import write_npz

HARD = ModelConfig(input_size=3, num_classes=3, hidden_size=8)
RATE = HARD.replace(spiking=True, T=2, encoding="rate")
ATOL = 1e-6
"""Largest weight difference allowed between one and two processes (see the module docstring)."""

TRAIN_SIZE = 41
"""Training sequences: with batch 5 the shards are 3 + 2 rows and the last batch (1 row) leaves
rank 1 empty; with batch 7 the shards are 4 + 3 and the last batch has 6 rows."""

SETTINGS = {"epochs": 2, "lr": 0.01, "seed": 3, "patience": None, "progress": False, "log": None, "threads": 1}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz(tmp_path_factory.mktemp("data") / "toy.npz")


@pytest.fixture(scope="module")
def bundle(data: Path) -> DataBundle:
    b = load_dataset("npz", str(data), seed=0, val_fraction=0.2, progress=False)
    b.train = subsample(b.train, TRAIN_SIZE, seed=0)
    return b


def _single(cfg: ModelConfig, bundle: DataBundle, **kwargs: Any) -> tuple[dict[str, torch.Tensor], TrainResult]:
    seed_everything(0)
    model = build_model(cfg)
    result = fit(model, bundle, **SETTINGS, **kwargs)
    return model.state_dict(), result


def _assert_same_training(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                          ha: list[dict[str, float]], hb: list[dict[str, float]]) -> None:
    assert a.keys() == b.keys()
    for name, expected in a.items():
        assert b[name].device.type == "cpu"
        torch.testing.assert_close(b[name], expected, rtol=0, atol=ATOL, msg=lambda m, n=name: f"{n}: {m}")
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in ha]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in hb] == [
        {k: pytest.approx(v, rel=1e-6, abs=1e-9) for k, v in h.items()} for h in strip]


def test_shards_are_contiguous_and_balanced() -> None:
    for count in (1, 2, 5, 7, 64):
        for world in (1, 2, 3, 4):
            parts = [distributed.shard(count, r, world) for r in range(world)]
            assert parts[0].start == 0 and parts[-1].stop == count
            assert all(p.stop == q.start for p, q in itertools.pairwise(parts))
            sizes = [p.stop - p.start for p in parts]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert distributed.shard(1, 1, 2) == slice(1, 1)  # an empty shard
    assert distributed.shard(10) == slice(0, 10)  # outside a group: everything


@pytest.mark.parametrize("count, world", [(5, 2), (7, 3), (1, 2), (2, 4)])
def test_shard_losses_give_the_single_process_gradient(count: int, world: int) -> None:
    """The gradients of the processes' shard losses, averaged as DDP does, are the gradient of the
    mean loss over the whole batch: unequal shards, and empty ones (stand-in row, weight 0)."""
    seed_everything(0)
    model = build_model(HARD)
    x, lengths, y = torch.randn(count, 4, 3), torch.full((count,), 4), torch.arange(count) % 3
    torch.nn.functional.cross_entropy(model(x, lengths), y).backward()
    single = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    for rank in range(world):
        rows = distributed.shard(count, rank, world)
        local = rows.stop - rows.start
        run = rows if local else slice(0, 1)
        _shard_loss(model(x[run], lengths[run]), y[run], local, count, world).backward()  # grads accumulate
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad / world, single[name], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cfg", [
    HARD, HARD.replace(num_layers=2, head_hidden=4, train_theta=False), RATE,
    RATE.replace(encoding="direct", nonspiking_gate="i", num_layers=2, train_leak=False),
], ids=["hard", "hard-2layer", "spiking-rate", "spiking-i-2layer"])
def test_every_trainable_parameter_gets_a_gradient(cfg: ModelConfig) -> None:
    """What lets DDP run with ``find_unused_parameters=False`` (distributed.wrap)."""
    seed_everything(0)
    model = build_model(cfg)
    model(torch.randn(3, 5, 3), torch.tensor([5, 2, 4])).sum().backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_two_spawned_processes_train_the_single_process_model(bundle: DataBundle) -> None:
    """Hard LSTM, batch 5: unequal shards (3 + 2), a partial last batch of one row (rank 1 empty),
    and a per-sample augmentation drawn for the whole batch."""
    settings = {"batch_size": 5, "augment_roll": (0, 1)}
    one, r1 = _single(HARD, bundle, **settings)
    seed_everything(0)
    model = build_model(HARD)
    r2 = fit(model, bundle, **SETTINGS, **settings, nproc=2)
    _assert_same_training(one, model.state_dict(), r1.history, r2.history)
    assert (r2.best_epoch, r2.settings["world_size"], r2.settings["threads"]) == (r1.best_epoch, 2, 1)


def _rank_fit(device: torch.device, cfg: ModelConfig, bundle: DataBundle,
              settings: dict[str, Any]) -> dict[str, Any] | None:
    """Spawned rank: ``fit`` inside an existing group (as under torchrun); rank 0 reports its weights,
    its history and whether every rank ended with the same weights to the bit."""
    seed_everything(0)
    model = build_model(cfg)
    result = fit(model, bundle, device=device, **SETTINGS, **settings)
    states: list[dict[str, torch.Tensor] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(states, model.state_dict())
    if dist.get_rank():
        return None
    same = all(torch.equal(s[k], states[0][k]) for s in states for k in s)  # type: ignore[index, union-attr]
    return {"state": model.state_dict(), "history": result.history, "ranks_agree": same}


def test_rate_encoded_spiking_model_in_an_existing_group(bundle: DataBundle) -> None:
    """Spiking LSTM with rate encoding (random draws in the forward pass), batch 7 (shards 4 + 3),
    trained by ``fit`` called on each rank of a group that exists already (the torchrun path)."""
    settings = {"batch_size": 7, "augment_roll": (0, 1)}
    one, r1 = _single(RATE, bundle, **settings)
    got = distributed.spawn(_rank_fit, 2, (RATE, bundle, settings), device_type="cpu")
    assert got["ranks_agree"], "the processes' weights drifted apart"
    _assert_same_training(one, got["state"], r1.history, got["history"])


def _fails_on_rank_one(device: torch.device) -> None:
    if dist.get_rank() == 1:
        raise UserError("rank 1 refuses")


def test_a_user_error_in_a_worker_is_a_user_error_here() -> None:
    with pytest.raises(UserError, match="^rank 1 refuses$"):
        distributed.spawn(_fails_on_rank_one, 2, (), device_type="cpu")


def test_bad_process_counts_and_devices(bundle: DataBundle, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="--nproc must be ≥ 1"):
        fit(build_model(HARD), bundle, batch_size=5, **SETTINGS, nproc=0)
    with pytest.raises(UserError, match=f"use at most {TRAIN_SIZE}"):
        fit(build_model(HARD), bundle, batch_size=5, **SETTINGS, nproc=TRAIN_SIZE + 1)
    with pytest.raises(UserError, match="unknown device"):
        distributed.resolve_device("tpu")
    assert distributed.resolve_device("cpu") == torch.device("cpu")
    assert set(CLI_DEVICES) == set(distributed.DEVICES)
    if not torch.cuda.is_available():
        assert distributed.resolve_device("auto") == torch.device("cpu")
        with pytest.raises(UserError, match="CUDA is not available"):
            distributed.resolve_device("cuda")
    for name, value in zip(distributed.TORCHRUN_VARIABLES, ("0", "1", "0", "127.0.0.1")):
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match="use one or the other"):
        distributed.check_nproc(2)


def _cli(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", "npz", "--data-dir", str(data), "--hidden", "8", "--batch-size", "25",
            "--lr", "0.01", "--epochs", "2", "--seed", "1", "--threads", "1", "--no-progress", *extra,
            "-o", str(out)]


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("snnhw: error: ") and message in err[0], err


def test_cli_user_errors(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "x.pt"
    _one_line_error(capsys, _cli(data, out, "--nproc", "0"), "--nproc must be ≥ 1")
    _one_line_error(capsys, _cli(data, out, "--nproc", "-2"), "--nproc must be ≥ 1")
    _one_line_error(capsys, _cli(data, out, "--nproc", "1000"), "processes for")
    if not torch.cuda.is_available():
        _one_line_error(capsys, _cli(data, out, "--device", "cuda"), "CUDA is not available")
    for name, value in zip(distributed.TORCHRUN_VARIABLES, ("0", "1", "0", "127.0.0.1")):
        monkeypatch.setenv(name, value)
    _one_line_error(capsys, _cli(data, out, "--nproc", "2"), "use one or the other")
    assert not out.exists()


def test_cli_nproc_2_end_to_end(tmp_path: Path, data: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """``snnhw train --nproc 2``: one checkpoint and one summary (rank 0), log lines once, CPU
    tensors, and the weights of ``--nproc 1``."""
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    assert main(_cli(data, one, "--device", "cpu")) == 0
    capfd.readouterr()
    assert main(_cli(data, two, "--nproc", "2")) == 0
    out, err = capfd.readouterr()
    assert out.count("saved ") == 1 and err.count("epoch 1:") == 1 and err.count("epoch 2:") == 1, (out, err)
    a, b = load_checkpoint(one), load_checkpoint(two)
    _assert_same_training(a.state_dict, b.state_dict, a.history, b.history)
    assert b.metrics["settings"]["world_size"] == 2 and b.metrics["torch_threads"] == 1
    assert b.metrics["test_accuracy"] == a.metrics["test_accuracy"]
    assert json.loads(two.with_suffix(".json").read_text())["checkpoint"] == str(two)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json", "one.pt", "two.json", "two.pt"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_under_a_torchrun_environment(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The variables torchrun sets (here for a group of one) make ``snnhw train`` join a group from
    the environment, train through DDP and leave no group behind."""
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "run.pt"
    assert main(_cli(data, out)) == 0
    assert "saved " in capsys.readouterr().out
    assert not distributed.active()
    assert load_checkpoint(out).metrics["settings"]["world_size"] == 1


@pytest.mark.slow
def test_real_torchrun(tmp_path: Path, data: Path) -> None:
    """``torchrun --nproc-per-node 2 --no-python snnhw train ...`` (about 10 s; --runslow)."""
    import shutil
    import subprocess
    import sys

    snnhw = shutil.which("snnhw") or str(Path(sys.executable).parent / "snnhw")
    out = tmp_path / "run.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "--no-python", snnhw, *_cli(data, out)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("saved ") == 1
    assert load_checkpoint(out).metrics["settings"]["world_size"] == 2

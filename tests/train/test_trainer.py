"""Trainer: reproducibility, early stopping with best-state selection, evaluation, subsets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

import snnhw.train.trainer as trainer
from snnhw.data.registry import load_dataset
from snnhw.errors import UserError
from snnhw.model import ModelConfig, build_model
from snnhw.train.seed import seed_everything
from snnhw.train.trainer import epoch_learning_rate, evaluate, fit, subsample
from train_fixtures import record_steps, write_npz

HARD = ModelConfig(input_size=3, num_classes=3, hidden_size=8)
SPIKING = HARD.replace(spiking=True, T=2)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = write_npz(tmp_path_factory.mktemp("data") / "toy.npz")
    return load_dataset("npz", str(path), seed=0, val_fraction=0.2, progress=False)


def _train(cfg: ModelConfig, bundle, seed: int, epochs: int = 2):  # type: ignore[no-untyped-def]
    seed_everything(seed)
    model = build_model(cfg)
    result = fit(model, bundle, epochs=epochs, lr=0.01, batch_size=32, seed=seed, patience=None,
                 progress=False, log=None)
    return model, result


@pytest.mark.parametrize("cfg", [HARD, SPIKING.replace(encoding="rate")], ids=["hard", "spiking-rate"])
def test_same_seed_same_weights(bundle, cfg: ModelConfig) -> None:  # type: ignore[no-untyped-def]
    a, ra = _train(cfg, bundle, seed=3)
    b, rb = _train(cfg, bundle, seed=3)
    c, _ = _train(cfg, bundle, seed=4)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert any(not torch.equal(t, c.state_dict()[n]) for n, t in a.state_dict().items())
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in ra.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in rb.history]


def test_history_and_learning(bundle) -> None:  # type: ignore[no-untyped-def]
    model, result = _train(HARD, bundle, seed=0, epochs=6)
    assert result.epochs_run == 6 and not result.stopped_early
    assert [h["epoch"] for h in result.history] == list(range(1, 7))
    for h in result.history:
        assert set(h) == {"epoch", "loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "lr"}
        assert 0 <= h["train_accuracy"] <= 1 and 0 <= h["val_accuracy"] <= 1 and h["seconds"] > 0
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    # The model holds the best epoch's weights: re-evaluating gives the recorded figure.
    best = result.history[result.best_epoch - 1]
    assert evaluate(model, bundle.val) == {"accuracy": best["val_accuracy"], "loss": best["val_loss"],
                                           "n": len(bundle.val)}
    assert best["val_accuracy"] == max(h["val_accuracy"] for h in result.history)


def test_early_stop_keeps_best_state(bundle, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    scripted = iter([0.5, 0.7, 0.6, 0.7, 0.65, 0.9])  # epoch 2 is best; patience 3 stops after epoch 5
    losses = iter([1.0, 0.8, 0.9, 0.85, 0.9, 0.1])  # epoch 4 ties epoch 2 in accuracy with a worse loss
    snapshots: list[dict[str, torch.Tensor]] = []

    def fake_evaluate(model, dataset, batch_size=256, **_):  # type: ignore[no-untyped-def]
        snapshots.append(copy.deepcopy(model.state_dict()))
        return {"accuracy": next(scripted), "loss": next(losses), "n": 1}

    monkeypatch.setattr(trainer, "evaluate", fake_evaluate)
    seed_everything(0)
    model = build_model(HARD)
    result = fit(model, bundle, epochs=10, lr=0.01, batch_size=32, seed=0, patience=3, progress=False, log=None)
    assert result.epochs_run == 5 and result.stopped_early
    assert (result.best_epoch, result.best_val_accuracy, result.best_val_loss) == (2, 0.7, 0.8)
    final = model.state_dict()
    assert all(torch.equal(final[n], t) for n, t in snapshots[1].items())
    assert any(not torch.equal(final[n], t) for n, t in snapshots[-1].items())


def test_time_budget_stops_after_one_epoch(bundle) -> None:  # type: ignore[no-untyped-def]
    seed_everything(0)
    result = fit(build_model(HARD), bundle, epochs=3, lr=0.01, batch_size=32, seed=0, patience=None,
                 progress=False, log=None, time_budget_s=1e-6)
    assert (result.epochs_run, result.stopped_early, result.stop_reason) == (1, True, "time")


def test_cosine_schedule_recorded_per_epoch(bundle) -> None:  # type: ignore[no-untyped-def]
    seed_everything(0)
    result = fit(build_model(HARD), bundle, epochs=4, lr=0.01, batch_size=32, seed=0, patience=None,
                 progress=False, log=None, schedule="cosine")
    assert [round(h["lr"], 12) for h in result.history] == [0.01, 0.008535533906, 0.005, 0.001464466094]
    assert epoch_learning_rate(0.01, 3, 4, "constant") == 0.01


def test_spiking_fit_keeps_thresholds_positive(bundle) -> None:  # type: ignore[no-untyped-def]
    model, result = _train(SPIKING, bundle, seed=0, epochs=1)
    thetas = [p for n, p in model.named_parameters() if "theta" in n]
    assert thetas, "spiking model exposes thresholds"
    assert all(bool((p > 0).all()) for p in thetas)
    assert result.history[0]["seconds"] > 0


def test_evaluate_repeatable_and_seedable(bundle) -> None:  # type: ignore[no-untyped-def]
    seed_everything(0)
    model = build_model(SPIKING.replace(encoding="rate"))
    first = evaluate(model, bundle.test)
    state = torch.get_rng_state()
    assert evaluate(model, bundle.test) == first
    assert torch.equal(torch.get_rng_state(), state), "evaluation must not consume the caller's random stream"
    assert first["n"] == len(bundle.test)


def test_evaluate_keeps_each_sequences_class_in_one_process(bundle, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seed_everything(0)
    model = build_model(SPIKING)
    kept = evaluate(model, bundle.test, batch_size=7, keep_classes=True)
    classes = kept.pop("classes")
    assert kept == evaluate(model, bundle.test, batch_size=7)
    with torch.no_grad():
        x, lengths = torch.as_tensor(bundle.test.x), torch.as_tensor(bundle.test.lengths)
        assert classes.tolist() == model.eval()(x, lengths).argmax(dim=1).tolist()
    monkeypatch.setattr(trainer.distributed, "active", lambda: True)
    with pytest.raises(ValueError, match="single process"):
        evaluate(model, bundle.test, keep_classes=True)


def test_subsample(bundle) -> None:  # type: ignore[no-untyped-def]
    a = subsample(bundle.train, 20, seed=1)
    b = subsample(bundle.train, 20, seed=1)
    assert len(a) == 20 and (a.y == b.y).all() and (a.x == b.x).all()
    assert subsample(bundle.train, 10_000, seed=1) is bundle.train
    with pytest.raises(UserError):
        subsample(bundle.train, 0, seed=1)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs"), ({"lr": -1.0}, "learning rate"), ({"batch_size": 0}, "batch size"),
    ({"patience": -1}, "patience"), ({"time_budget_s": 0.0}, "time budget"),
    ({"schedule": "step"}, "schedule"), ({"weight_decay": -0.1}, "weight decay"),
])
def test_bad_settings(bundle, kwargs: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    settings = {"epochs": 1, "lr": 0.01, "batch_size": 32, "seed": 0, "patience": None, **kwargs}
    with pytest.raises(UserError, match=message):
        fit(build_model(HARD), bundle, progress=False, log=None, **settings)


def test_fixture_file_is_learnable(tmp_path: Path) -> None:
    """The synthetic data really depend on x (guards the tests above against a trivial task)."""
    b = load_dataset("npz", str(write_npz(tmp_path / "d.npz")), seed=0, val_fraction=0.2, progress=False)
    counts = torch.bincount(torch.as_tensor(b.train.y), minlength=3)
    assert int(counts.max()) < 0.6 * len(b.train)


def test_random_roll_is_a_per_sample_circular_shift() -> None:
    from snnhw.train.seed import generator
    from snnhw.train.trainer import random_roll

    x = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    out = random_roll(x, (2, 1), generator(0, stream=5))
    again = random_roll(x, (2, 1), generator(0, stream=5))
    assert torch.equal(out, again)
    for b in range(2):  # each sample equals x[b] rolled by some (dn, dd) within the bounds
        assert any(torch.equal(out[b], torch.roll(x[b], (dn, dd), dims=(0, 1)))
                   for dn in range(-2, 3) for dd in range(-1, 2))
    assert torch.equal(random_roll(x, (0, 0), generator(0)), x)


def test_random_scale_is_a_per_sample_per_feature_gain() -> None:
    from snnhw.train.seed import generator
    from snnhw.train.trainer import random_scale

    x = torch.arange(1, 3 * 4 * 5 + 1, dtype=torch.float32).reshape(3, 4, 5)
    x[0, 3:] = 0.0  # padding of a short sequence
    out = random_scale(x, 0.2, generator(0, stream=5))
    assert torch.equal(out, random_scale(x, 0.2, generator(0, stream=5)))
    gains = out / torch.where(x == 0, 1.0, x)
    assert torch.allclose(gains[1:], gains[1:, :1].expand_as(gains[1:]))  # one gain per sequence and feature
    assert float(gains[x != 0].min()) >= 0.8 - 1e-6 and float(gains[x != 0].max()) <= 1.2 + 1e-6
    assert len({round(float(g), 6) for g in gains[1:, 0].flatten()}) == 2 * 5  # all different
    assert bool((out[0, 3:] == 0).all())
    assert torch.equal(random_scale(x, 0.0, generator(0)), x)


def test_augmented_fit_differs_and_rejects_bad_shift(bundle) -> None:  # type: ignore[no-untyped-def]
    seed_everything(0)
    plain = build_model(HARD)
    seed_everything(0)
    rolled = build_model(HARD)
    fit(plain, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None, progress=False, log=None)
    fit(rolled, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None, progress=False, log=None,
        augment_roll=(0, 1))
    a, b = plain.state_dict(), rolled.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a), "the augmentation changed nothing"
    seed_everything(0)
    zero = build_model(HARD)
    fit(zero, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None, progress=False, log=None,
        augment_roll=(0, 0))
    assert all(torch.equal(a[k], zero.state_dict()[k]) for k in a), "(0, 0) must be no augmentation"
    with pytest.raises(UserError, match="augmentation"):
        fit(build_model(HARD), bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None, progress=False,
            log=None, augment_roll=(-1, 0))
    seed_everything(0)
    scaled = build_model(HARD)
    fit(scaled, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None, progress=False, log=None,
        augment_scale=0.2)
    assert any(not torch.equal(a[k], scaled.state_dict()[k]) for k in a), "the gains changed nothing"
    for bad in (-0.1, 1.0):
        with pytest.raises(UserError, match="gain change"):
            fit(build_model(HARD), bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None,
                progress=False, log=None, augment_scale=bad)
    assert bool((bundle.train.lengths < bundle.train.x.shape[1]).any()), "fixture has short sequences"
    with pytest.raises(UserError, match="fill the padded length"):
        fit(build_model(HARD), bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None, progress=False,
            log=None, augment_roll=(1, 0))


def test_weight_noise_perturbs_the_pass_and_restores_the_weights() -> None:
    """Inside the block every parameter is its own value times 1 + ε·N(0, 1) (drawn from the
    generator, reproducibly); the gradient is the one at those values; afterwards the values
    are the unperturbed ones again; ε = 0 changes nothing and draws nothing."""
    from snnhw.train.seed import generator
    from snnhw.train.trainer import weight_noise

    p = torch.nn.Parameter(torch.full((4000,), 2.0))
    q = torch.nn.Parameter(torch.full((3,), -1.0))
    gen = generator(0, stream=7)
    with weight_noise([p, q], 0.1, gen):
        inside = p.detach().clone(), q.detach().clone()
        ((p ** 2).sum() + q.sum()).backward()
    assert torch.equal(p.detach(), torch.full((4000,), 2.0)) and torch.equal(q.detach(), torch.full((3,), -1.0))
    assert torch.allclose(p.grad, 2 * inside[0])  # the gradient at the perturbed point
    relative = inside[0] / 2.0 - 1.0
    assert abs(float(relative.mean())) < 0.01 and 0.095 < float(relative.std()) < 0.105
    assert len(set(inside[1].tolist())) == 3 and bool((inside[1] != -1.0).all())
    expected = torch.randn(4000, generator=generator(0, stream=7))  # the same draws, in the same order
    assert torch.allclose(inside[0], 2.0 * (1.0 + 0.1 * expected))
    gen = generator(0, stream=7)
    with weight_noise([p], 0.0, gen):
        assert torch.equal(p.detach(), torch.full((4000,), 2.0))
    assert torch.equal(torch.randn(4000, generator=gen), expected)  # nothing drawn


def test_fit_with_weight_noise_differs_reproducibly_and_rejects_bad_scales(bundle) -> None:  # type: ignore[no-untyped-def]
    runs = []
    for noise in (0.0, 0.05, 0.05):
        seed_everything(0)
        model = build_model(HARD)
        result = fit(model, bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None, progress=False,
                     log=None, weight_noise=noise)
        runs.append((model.state_dict(), result.settings))
    (plain, plain_settings), (noisy, settings), (again, _) = runs
    assert any(not torch.equal(plain[k], noisy[k]) for k in plain), "the weight noise changed nothing"
    assert all(torch.equal(noisy[k], again[k]) for k in noisy), "the noise must come from the run's seed"
    assert settings["weight_noise"] == 0.05 and "weight_noise" not in plain_settings
    for bad in (-0.01, 1.0, float("nan")):
        with pytest.raises(UserError, match="weight noise must be in"):
            fit(build_model(HARD), bundle, epochs=1, lr=0.01, batch_size=32, seed=0, patience=None,
                progress=False, log=None, weight_noise=bad)


def test_distillation_loss_is_the_weighted_sum_of_its_terms() -> None:
    """α = 0: the cross-entropy; α = 1: τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) averaged over rows,
    computed here from its definition; zero when the student's logits equal the teacher's."""
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    y = torch.tensor([0, 1, 2, 1, 0])
    ce = torch.nn.functional.cross_entropy(s, y)
    tau = 3.0
    p_t, p_s = torch.softmax(t / tau, dim=1), torch.softmax(s / tau, dim=1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(dim=1).mean() * tau ** 2
    assert torch.allclose(trainer.distillation_loss(s, y, t, 0.0, tau), ce)
    assert torch.allclose(trainer.distillation_loss(s, y, None, 0.5, tau), ce)
    assert torch.allclose(trainer.distillation_loss(s, y, t, 1.0, tau), kl)
    assert torch.allclose(trainer.distillation_loss(s, y, t, 0.3, tau), 0.7 * ce + 0.3 * kl)
    assert float(trainer.distillation_loss(t, y, t, 1.0, tau)) == pytest.approx(0.0, abs=1e-7)


def test_distilled_fit_uses_the_teacher(bundle) -> None:  # type: ignore[no-untyped-def]
    """A spiking model distilled from a trained hard LSTM: deterministic, different from plain
    training, records its settings, and needs a teacher; the teacher itself is not trained."""
    teacher, _ = _train(HARD, bundle, seed=1, epochs=3)
    before = copy.deepcopy(teacher.state_dict())

    def distilled(alpha: float, teacher_model=teacher):  # type: ignore[no-untyped-def]
        seed_everything(2)
        model = build_model(SPIKING)
        result = fit(model, bundle, epochs=2, lr=0.01, batch_size=32, seed=2, patience=None, progress=False,
                     log=None, teacher=teacher_model, distill=alpha, distill_temperature=2.0)
        return model, result

    a, ra = distilled(0.8)
    b, _ = distilled(0.8)
    plain, rp = distilled(0.0)
    assert all(torch.equal(t, b.state_dict()[n]) for n, t in a.state_dict().items())
    assert any(not torch.equal(t, plain.state_dict()[n]) for n, t in a.state_dict().items())
    assert ra.settings["distill"] == 0.8 and ra.settings["distill_temperature"] == 2.0
    assert "distill" not in rp.settings
    assert all(torch.equal(t, before[n]) for n, t in teacher.state_dict().items())
    for alpha, who, message in ((0.5, None, "teacher"), (1.5, teacher, "weight"), (-0.1, teacher, "weight")):
        with pytest.raises(UserError, match=message):
            distilled(alpha, who)


def test_weight_average_follows_its_formula() -> None:
    """a ← d·a + (1 − d)·w with d = min(decay, (1 + k)/(10 + k)) at update k; integer entries
    copied; ``applied`` lends the average and gives the module its own weights back."""
    model = torch.nn.Linear(2, 1).double()
    model.register_buffer("count", torch.zeros((), dtype=torch.int64))
    average = trainer.WeightAverage(model, decay=0.9)
    expected = model.weight.detach().clone()
    for k in range(1, 40):
        with torch.no_grad():
            model.weight.fill_(float(k))
            model.count.fill_(k)
        average.update(model)
        d = min(0.9, (1 + k) / (10 + k))
        expected = d * expected + (1 - d) * float(k)
    assert torch.allclose(average.state["weight"], expected, rtol=1e-13, atol=0)
    assert int(average.state["count"]) == 39
    own = copy.deepcopy(model.state_dict())
    with average.applied(model):
        assert torch.equal(model.weight, average.state["weight"])
    assert all(torch.equal(t, own[n]) for n, t in model.state_dict().items())
    for decay in (0.0, 1.0):
        with pytest.raises(UserError, match="weight-average"):
            trainer.WeightAverage(model, decay)


def test_weight_average_warm_up_2_is_the_mean_of_all_steps() -> None:
    """With warm-up W = 2 the average after k updates is the mean of the k weights trained and the
    initial weights counted twice, until the decay reaches DECAY; a warm-up below 1 is refused."""
    model = torch.nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        model.weight.fill_(-3.0)
    average = trainer.WeightAverage(model, decay=0.95, warmup=2.0)
    seen = [-3.0, -3.0]
    for k in range(1, 18):  # (1 + k)/(2 + k) < 0.95 up to k = 17
        with torch.no_grad():
            model.weight.fill_(float(k * k))
        average.update(model)
        seen.append(float(k * k))
        assert float(average.state["weight"]) == pytest.approx(sum(seen) / len(seen), rel=1e-13)
    for warmup in (0.5, float("nan")):
        with pytest.raises(UserError, match="warm-up"):
            trainer.WeightAverage(model, 0.9, warmup)


def test_fit_with_weight_average(bundle, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Training itself is unchanged by the average; what is validated, selected and returned is
    the average of the weights after every step."""
    steps = record_steps(monkeypatch)

    def run(ema: float, select: str, warmup: float = 10.0):  # type: ignore[no-untyped-def]
        seed_everything(5)
        model = build_model(SPIKING)
        result = fit(model, bundle, epochs=3, lr=0.01, batch_size=32, seed=5, patience=None, progress=False,
                     log=None, select=select, ema=ema, ema_warmup=warmup)
        return model, result

    raw, _ = run(0.0, "last")
    trajectory, steps[:] = list(steps), []
    averaged, result = run(0.8, "last")
    assert all(torch.equal(t, trajectory[-1][n]) for n, t in steps[-1].items()), "the average changed training"
    seed_everything(5)
    reference = trainer.WeightAverage(build_model(SPIKING), 0.8)
    for state in trajectory:
        reference.update(_holding(state))
    assert all(torch.equal(t, reference.state[n]) for n, t in averaged.state_dict().items())
    assert any(not torch.equal(t, raw.state_dict()[n]) for n, t in averaged.state_dict().items())
    assert result.settings["ema"] == 0.8 and "ema_warmup" not in result.settings
    mean, result = run(0.8, "last", warmup=2.0)
    seed_everything(5)
    reference = trainer.WeightAverage(build_model(SPIKING), 0.8, warmup=2.0)
    for state in trajectory:
        reference.update(_holding(state))
    assert all(torch.equal(t, reference.state[n]) for n, t in mean.state_dict().items())
    assert any(not torch.equal(t, averaged.state_dict()[n]) for n, t in mean.state_dict().items())
    assert result.settings["ema_warmup"] == 2.0
    best, result = run(0.8, "best")
    kept = result.history[result.best_epoch - 1]
    assert evaluate(best, bundle.val) == {"accuracy": kept["val_accuracy"], "loss": kept["val_loss"],
                                          "n": len(bundle.val)}
    with pytest.raises(UserError, match="weight-average"):
        run(1.0, "last")


def _holding(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A spiking model holding ``state`` (to feed a recorded weight trajectory to an average)."""
    model = build_model(SPIKING)
    model.load_state_dict(state)
    return model

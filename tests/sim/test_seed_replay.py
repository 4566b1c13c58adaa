"""The run seed (``--seed N|random``, ``$SNNHW_SEED``; ``tests/seeding.py``) reaches the stimulus,
is printed in every report of a seeded test, and replays it. No simulator: the stimulus is built
(model, inputs, stall patterns) and hashed, exactly as the regression builds it before simulating.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from snnhw.quant.synthetic import random_frozen_spiking
from snnhw.sim.stimulus import build_stimulus, default_modes
from snnhw.hw.knobs import SpikingKnobs
from snnhw.hw.registry import core_spec

from seeding import resolve_run_seed
from simfixtures import batch_inputs, seed_for

PROBE_DEFAULT_SEED = 41
ROOT = Path(__file__).resolve().parents[2]
PROBE = f"{Path(__file__).resolve().relative_to(ROOT)}::test_probe_stimulus_of_the_run_seed"


def stimulus_digest(seed: int) -> str:
    """SHA-256 (hex) of the stimulus a small spiking configuration gets from ``seed``:
    the random model, the batch (lengths, input words, expected words, cycles) and the modes'
    stall seeds."""
    model = random_frozen_spiking(seed, input_size=3, hidden_size=4, T=2)
    schedule = core_spec("spiking").schedule_of(model, SpikingKnobs(lanes=2, fanin=2, engines=2))
    x, lengths = batch_inputs(model, seed, 3, 4)
    stim = build_stimulus(model, schedule, x, lengths, modes=default_modes(seed))
    return hashlib.sha256(json.dumps(stim.to_json(), sort_keys=True).encode()).hexdigest()


def test_probe_stimulus_of_the_run_seed(request: pytest.FixtureRequest) -> None:
    """Prints the seed this run gives a configuration and the digest of its stimulus (the
    subprocess runs below read it); the stimulus is a function of the seed alone."""
    seed = seed_for(request, PROBE_DEFAULT_SEED)
    digest = stimulus_digest(seed)
    print(f"probe seed={seed} digest={digest}")
    assert stimulus_digest(seed) == digest


def run_probe(*options: str, env_seed: str | None = None) -> str:
    """Run the probe in a fresh pytest (``-rP``: the passed test's output and seed section shown)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SNNHW_SEED", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST") and not k.startswith("PYTEST_XDIST")}
    if env_seed is not None:
        env["SNNHW_SEED"] = env_seed
    proc = subprocess.run([sys.executable, "-m", "pytest", PROBE, "-p", "no:cacheprovider", "-rP", *options],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def probe_result(out: str) -> tuple[int, str]:
    m = re.search(r"probe seed=(\d+) digest=([0-9a-f]{64})", out)
    assert m is not None, out
    return int(m.group(1)), m.group(2)


def test_seed_option_reaches_the_stimulus_and_replays() -> None:
    default = stimulus_digest(PROBE_DEFAULT_SEED)
    assert stimulus_digest(7) != default  # the seed changes the stimulus
    # --seed wins over $SNNHW_SEED; header, captured output and the seed section name it
    out = run_probe("--seed", "7", env_seed="9")
    assert probe_result(out) == (7, stimulus_digest(7))
    assert "snnhw seed: 7 (from --seed; replay with --seed 7)" in out
    assert f"seed=7; replay: pytest '{PROBE}' --seed 7" in out
    # $SNNHW_SEED alone still works
    assert probe_result(run_probe(env_seed="9")) == (9, stimulus_digest(9))
    # no run seed: the configuration's default, and its replay line
    out = run_probe()
    assert probe_result(out) == (PROBE_DEFAULT_SEED, default)
    assert f"--seed {PROBE_DEFAULT_SEED}" in out


def test_random_seed_is_printed_and_replays() -> None:
    out = run_probe("--seed", "random", "-q")
    m = re.search(r"snnhw seed: (\d+) \(from --seed random; replay with --seed \1\)", out)
    assert m is not None, out  # printed even under -q (terminal summary)
    seed, digest = probe_result(out)
    assert seed == int(m.group(1))
    assert probe_result(run_probe("--seed", str(seed))) == (seed, digest)


def test_resolve_run_seed() -> None:
    assert resolve_run_seed(None, None) == (None, "defaults")
    assert resolve_run_seed(None, "12") == (12, "$SNNHW_SEED")
    assert resolve_run_seed("3", "12") == (3, "--seed")
    assert resolve_run_seed("random", "12", draw=5) == (5, "--seed random")
    for bad in ("-1", "x"):
        with pytest.raises(pytest.UsageError, match="--seed wants"):
            resolve_run_seed(bad, None)
    with pytest.raises(pytest.UsageError, match="SNNHW_SEED"):
        resolve_run_seed(None, "abc")

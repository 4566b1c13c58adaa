"""The CLI dispatcher: subcommand discovery and one-line user errors."""

from __future__ import annotations

import argparse

import pytest

from snnhw import cli
from snnhw.errors import UserError
from snnhw.model.config import ModelConfig


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: snnhw" in capsys.readouterr().out


def test_user_error_is_one_line_without_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fail(_args: argparse.Namespace) -> int:
        raise UserError("the file x.pt does not exist")

    real = cli.build_parser

    def parser_with_failing_command() -> argparse.ArgumentParser:
        parser = real()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.add_parser("boom").set_defaults(func=fail)
        return parser

    monkeypatch.setattr(cli, "build_parser", parser_with_failing_command)
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err == "snnhw: error: the file x.pt does not exist\n"


def test_model_config_round_trip_and_validation() -> None:
    cfg = ModelConfig(input_size=9, num_classes=6, spiking=True, T=2)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(T=8).T == 8
    with pytest.raises(UserError, match="T must be"):
        cfg.replace(T=0)
    with pytest.raises(UserError, match="unknown fields"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_commands_run_with_sleeping_openmp_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` sets ``OMP_WAIT_POLICY=PASSIVE`` before a command runs unless the user chose a
    policy (``OMP_WAIT_POLICY``, or ``GOMP_SPINCOUNT`` for libgomp's own spinning); a process
    that sets it before importing torch gets it from libgomp (``OMP_DISPLAY_ENV``)."""
    import os
    import subprocess
    import sys

    seen: list[str | None] = []
    real = cli.build_parser

    def parser_with_probe() -> argparse.ArgumentParser:
        parser = real()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.add_parser("probe").set_defaults(func=lambda _args: seen.append(os.environ.get("OMP_WAIT_POLICY")) or 0)
        return parser

    monkeypatch.setattr(cli, "build_parser", parser_with_probe)
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["probe"]) == 0
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert cli.main(["probe"]) == 0
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "300000")
    assert cli.main(["probe"]) == 0
    assert seen == ["PASSIVE", "ACTIVE", None]
    assert cli.default_openmp_wait_policy() == "GOMP_SPINCOUNT=300000"

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = "from snnhw.cli import default_openmp_wait_policy as d; d(); import torch; torch.ones(2).sum()"
    run = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_DISPLAY_ENV": "TRUE"},
                         capture_output=True, text=True, check=True)
    if "OPENMP DISPLAY ENVIRONMENT" not in run.stderr + run.stdout:
        pytest.skip("PyTorch's OpenMP runtime does not display its environment (not libgomp)")
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in run.stderr + run.stdout

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

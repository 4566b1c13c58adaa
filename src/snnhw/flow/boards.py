"""Board descriptions (``boards/*.json``) and their amaranth-boards platforms.

A board is a JSON file naming an ``amaranth.build.Platform`` class (``module:Class``), the
Vivado part for out-of-context runs, the clock resource and the LED assignment of the
self-checking top. See ``boards/README.md`` for the fields and how to add a board.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnhw.assets import boards_dir
from snnhw.errors import UserError

BUNDLED_BOARDS = boards_dir()
"""The bundled board files: ``boards/`` of a checkout, installed as ``snnhw.assets_boards``."""

LED_ROLES = ("done", "pass", "fail", "heartbeat")


@dataclass(frozen=True)
class Board:
    """One board: its names, platform class path, Vivado part, clock resource and LED roles."""

    name: str
    aliases: tuple[str, ...]
    description: str
    platform: str
    part: str
    clock: str
    leds: dict[str, int]
    source: Path

    def platform_class(self) -> type:
        """Import and return the platform class (``module:Class``)."""
        module_name, _, class_name = self.platform.partition(":")
        try:
            module = importlib.import_module(module_name)
            return getattr(module, class_name)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"board {self.name}: cannot import platform {self.platform!r} ({exc})") from None

    def clock_hz(self) -> float:
        """The frequency (Hz) of the board's clock resource, as the platform declares it."""
        platform = self.platform_class()()
        resource = platform.lookup(self.clock, 0)
        if resource.clock is None:
            raise UserError(f"board {self.name}: resource {self.clock!r} declares no clock frequency")
        return float(resource.clock.frequency)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for build reports)."""
        return {
            "name": self.name,
            "description": self.description,
            "platform": self.platform,
            "part": self.part,
            "clock": self.clock,
            "leds": dict(self.leds),
            "source": str(self.source),
        }


def board_dirs() -> list[Path]:
    """Folders searched for board files: the bundled one, then ``SNNHW_BOARDS`` entries."""
    extra = [Path(p) for p in os.environ.get("SNNHW_BOARDS", "").split(os.pathsep) if p]
    return [BUNDLED_BOARDS, *extra]


def load_board_file(path: Path) -> Board:
    """Read and validate one board JSON file."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"board file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"board file {path} is not valid JSON ({exc})") from None
    required = ("name", "platform", "part", "clock", "leds")
    missing = [key for key in required if key not in raw]
    if missing:
        raise UserError(f"board file {path} lacks {', '.join(missing)}")
    if ":" not in str(raw["platform"]):
        raise UserError(f"board file {path}: platform must be 'module:Class', got {raw['platform']!r}")
    leds = raw["leds"]
    if not isinstance(leds, dict) or any(role not in leds for role in LED_ROLES[:3]):
        raise UserError(f"board file {path}: leds must map at least done, pass and fail to LED indices")
    return Board(
        name=str(raw["name"]),
        aliases=tuple(str(a) for a in raw.get("aliases", [])),
        description=str(raw.get("description", "")),
        platform=str(raw["platform"]),
        part=str(raw["part"]),
        clock=str(raw["clock"]),
        leds={str(k): int(v) for k, v in leds.items()},
        source=Path(path),
    )


def known_boards() -> dict[str, Board]:
    """All boards found, by name (a later folder's board of the same name wins)."""
    boards: dict[str, Board] = {}
    for folder in board_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                board = load_board_file(path)
                boards[board.name] = board
    return boards


def find_board(name: str) -> Board:
    """The board called ``name`` (or with that alias); an unknown name lists the known ones."""
    boards = known_boards()
    for board in boards.values():
        if name == board.name or name in board.aliases:
            return board
    listing = ", ".join(
        f"{b.name}" + (f" (alias {', '.join(b.aliases)})" if b.aliases else "") for b in boards.values()
    )
    raise UserError(f"unknown board {name!r}; known boards: {listing or 'none found'}")

"""Board descriptions (``boards/*.json``) and their amaranth-boards platforms.

A board is a JSON file naming an ``amaranth.build.Platform`` class (``module:Class``), its part
(the Vivado part for out-of-context runs, or the ECP5 device), the clock resource and the LED
assignment of the self-checking top. The board's flow follows from its platform: Lattice ECP5
platforms use the open flow (:mod:`snnhw.flow.ecp5`), the others Vivado. See
``boards/README.md`` for the fields and how to add a board.
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
class LedSpec:
    """One LED of the self-checking top: platform resource ``resource`` number ``index``, and for
    a multi-colour LED the ``subsignal`` (``r``, ``g`` or ``b`` of an ``rgb_led``)."""

    resource: str
    index: int
    subsignal: str | None = None

    @classmethod
    def parse(cls, value: Any, where: str) -> LedSpec:
        """``3`` (``led`` 3) or ``"rgb_led:0:g"`` (the green part of ``rgb_led`` 0)."""
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls("led", value)
        if isinstance(value, str):
            parts = value.split(":")
            if len(parts) in (2, 3) and parts[1].isdigit():
                return cls(parts[0], int(parts[1]), parts[2] if len(parts) == 3 else None)
        raise UserError(f"{where}: an LED is an index (3) or 'resource:index[:subsignal]' ('rgb_led:0:g'), "
                        f"got {value!r}")

    def to_json(self) -> int | str:
        """The JSON form :meth:`parse` reads."""
        if self.resource == "led" and self.subsignal is None:
            return self.index
        return ":".join([self.resource, str(self.index), *([self.subsignal] if self.subsignal else [])])


@dataclass(frozen=True)
class Board:
    """One board: its names, platform class path, part, clock resource and LED roles."""

    name: str
    aliases: tuple[str, ...]
    description: str
    platform: str
    part: str
    clock: str
    leds: dict[str, LedSpec]
    source: Path

    @property
    def flow(self) -> str:
        """``ecp5`` for a Lattice ECP5 platform (the open flow), else ``vivado``."""
        from amaranth.vendor import LatticePlatform

        platform = self.platform_class()()
        return "ecp5" if isinstance(platform, LatticePlatform) and platform.family == "ecp5" else "vivado"

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
            "leds": {role: led.to_json() for role, led in self.leds.items()},
            "flow": self.flow,
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
        leds={str(k): LedSpec.parse(v, f"board file {path}") for k, v in leds.items()},
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
    """The board called ``name`` (or with that alias), or the board file ``name`` when it ends in
    ``.json``; an unknown name lists the known ones."""
    if name.endswith(".json"):
        return load_board_file(Path(name))
    boards = known_boards()
    for board in boards.values():
        if name == board.name or name in board.aliases:
            return board
    listing = ", ".join(
        f"{b.name}" + (f" (alias {', '.join(b.aliases)})" if b.aliases else "") for b in boards.values()
    )
    raise UserError(f"unknown board {name!r}; known boards: {listing or 'none found'}")

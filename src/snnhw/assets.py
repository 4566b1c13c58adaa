"""Where the files that ship with snnhw are: board descriptions, Vivado templates, the testbench.

In a checkout they are the top-level folders ``boards/``, ``rtl_templates/`` and ``sim/``.
``pyproject.toml`` maps each folder to a sub-package of snnhw (its ``package-dir`` table), so a
wheel carries them inside ``snnhw/`` and an editable install finds them in the checkout:

* ``boards/`` is ``snnhw.assets_boards``: the board JSON files (:mod:`snnhw.flow.boards`);
* ``rtl_templates/`` is ``snnhw.assets_templates``: the Vivado TCL/XDC templates
  (:mod:`snnhw.flow.vivado`);
* ``sim/`` is ``snnhw.assets_sim``: the cocotb testbench ``tb_core.py`` (:mod:`snnhw.sim.runner`)
  and the Makefile for running it with cocotb's makefiles (``sim/README.md``).

The functions below find the folders through :mod:`importlib.resources`, whichever way snnhw is
installed, and return a real directory: the package's own folder when it is on the file system
(always, for a wheel or editable install), else a private copy extracted once per process (an
import from a zip archive; removed at exit).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.resources
import tempfile
from importlib.resources.abc import Traversable
from pathlib import Path

from snnhw.errors import UserError

BOARDS_PACKAGE = "snnhw.assets_boards"
"""Package of the ``boards/`` folder."""

TEMPLATES_PACKAGE = "snnhw.assets_templates"
"""Package of the ``rtl_templates/`` folder."""

TESTBENCH_PACKAGE = "snnhw.assets_sim"
"""Package of the ``sim/`` folder (the cocotb testbench)."""

_EXTRACTED = contextlib.ExitStack()
atexit.register(_EXTRACTED.close)


def _copy_tree(src: Traversable, dest: Path) -> None:
    """Copy a resource tree (any :class:`~importlib.resources.abc.Traversable`) to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_dir():
            if item.name != "__pycache__":
                _copy_tree(item, dest / item.name)
        else:
            (dest / item.name).write_bytes(item.read_bytes())


@functools.cache
def package_dir(package: str) -> Path:
    """A file-system directory holding the files of ``package`` (see the module docstring)."""
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise UserError(
            f"the snnhw asset package {package} is missing: this snnhw installation is incomplete "
            "(reinstall it, or run `pip install -e .` again in a checkout)"
        ) from None
    if isinstance(root, Path):
        return root
    tmp = Path(_EXTRACTED.enter_context(tempfile.TemporaryDirectory(prefix="snnhw-assets-")))
    dest = tmp / package.rpartition(".")[2]
    _copy_tree(root, dest)
    return dest


def boards_dir() -> Path:
    """The bundled board descriptions (``boards/`` of a checkout)."""
    return package_dir(BOARDS_PACKAGE)


def templates_dir() -> Path:
    """The Vivado TCL/XDC templates (``rtl_templates/`` of a checkout)."""
    return package_dir(TEMPLATES_PACKAGE)


def testbench_dir() -> Path:
    """The folder of the cocotb testbench ``tb_core.py`` (``sim/`` of a checkout)."""
    return package_dir(TESTBENCH_PACKAGE)

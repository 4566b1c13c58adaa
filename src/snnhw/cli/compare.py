"""``snnhw compare BUILD_DIR [BUILD_DIR ...]``: one comparison table for several builds."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``snnhw compare``."""
    p = sub.add_parser("compare", help="compare the reports of one or several builds",
                       description="Print a comparison table (Markdown) of snnhw build directories.")
    p.add_argument("builds", nargs="+", type=Path, metavar="BUILD_DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the table; a directory that is not a build is a user error."""
    from snnhw.flow.report import comparison_table, load_report

    builds = {str(d): load_report(d) for d in args.builds}
    print(comparison_table(builds))
    return 0

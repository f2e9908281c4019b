"""Shared command-line plumbing of train.py, test.py and tools/*.py."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional, Sequence

from tusimple_duc.errors import DUCError


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--set section.key=value`` config override."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override a config value (repeatable), e.g. --set data.batch_size=4",
    )


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[List[str]] = None) -> int:
    """Run ``main(argv)``; a :class:`DUCError` becomes ``error: <message>`` on stderr and exit 2.

    Ctrl-C exits with 130 without a traceback. Anything else is a bug and keeps its traceback.
    """
    try:
        return int(main(argv) or 0)
    except DUCError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

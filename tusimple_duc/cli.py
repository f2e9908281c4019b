"""Shared command-line plumbing of train.py, test.py and tools/*.py."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Callable, List, Optional, Sequence

from tusimple_duc.errors import DUCError


#: where every config key is documented (type, default, meaning)
CONFIG_KEYS_DOC = "tusimple_duc/config.py (one typed schema: every key with its type, default and meaning)"


def add_set_argument(parser: argparse.ArgumentParser, example: str = "data.batch_size=4") -> None:
    """Add the repeatable ``--set section.key=value`` config override; ``example`` is a key of the
    config the command reads (its help shows it)."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help=f"override a config value (repeatable; default: none), e.g. --set {example}; keys: {CONFIG_KEYS_DOC}",
    )


class Terminated(BaseException):
    """SIGTERM arrived (:func:`exit_on_sigterm`): unwinds the stack like Ctrl-C, so that an
    atomic write in progress removes its temporary file."""


def exit_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in this process (:func:`run_cli` exits 143). A
    forked child that inherited the handler dies of the signal as before."""
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[List[str]] = None) -> int:
    """Run ``main(argv)``; a :class:`DUCError` becomes ``error: <message>`` on stderr and exit 2.

    Ctrl-C exits with 130 and SIGTERM (with :func:`exit_on_sigterm`) with 143, without a
    traceback. Anything else is a bug and keeps its traceback.
    """
    try:
        return int(main(argv) or 0)
    except DUCError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM

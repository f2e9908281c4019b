"""Write the released-layout symbol JSON of every model preset to symbols/<preset>-symbol.json.

The comparison systems' graphs go to symbols/systems/<preset>-symbol.json (io/system_symbols.py).

    python tools/generate_symbols.py [--out symbols]

Run it after changing a preset or the network code; tests/io/test_symbols.py fails while
a committed file differs from what the code generates.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from tusimple_duc.io.export import write_preset_symbols
from tusimple_duc.io.system_symbols import write_system_symbols

DEFAULT_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "symbols")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_FOLDER, help="output folder (default: symbols/)")
    args = parser.parse_args(argv)
    for path in write_preset_symbols(args.out) + write_system_symbols(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

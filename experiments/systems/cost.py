"""``python -m experiments.systems.cost <system key> <budget name>``: one system's
:class:`~experiments.systems.run.Cost` as a JSON line on stdout (a fresh process per system)."""
from __future__ import annotations

import dataclasses
import json
import sys
import warnings

import tusimple_duc  # noqa: F401  (before mxnet: thread settings)
from experiments.systems.entries import entry
from experiments.systems.run import BUDGETS, cost_in_this_process


def main(argv=None) -> int:
    key, budget = (argv if argv is not None else sys.argv[1:])[:2]
    system = entry(key)
    if system is None or budget not in BUDGETS:
        print(f"error: unknown system {key!r} or budget {budget!r}", file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gluon's notice about PSPNet's unused auxiliary layers
        cost = cost_in_this_process(system, BUDGETS[budget])
    print(json.dumps(dataclasses.asdict(cost)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

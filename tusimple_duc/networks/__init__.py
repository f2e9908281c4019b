"""The original TuSimple-DUC ``tusimple_duc.networks`` API (symbol builders) over the Gluon models.

See docs/COMPAT.md for what maps to what.
"""

"""The original TuSimple-DUC ``tusimple_duc.test`` API (``Tester``, ``Predictor``) over the package's inference.

See docs/COMPAT.md for what maps to what.
"""

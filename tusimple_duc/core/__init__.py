"""The original TuSimple-DUC ``tusimple_duc.core`` API (loader, utils, metrics, lr scheduler) over the package.

See docs/COMPAT.md for what maps to what.
"""

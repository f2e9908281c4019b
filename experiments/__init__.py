"""The project's experiments beside the library: the demo, the paper's claims and the benchmarks.

Each subpackage imports only the public functions of :mod:`tusimple_duc`; the thin
``tools/*.py`` commands call them. Installed with the project (``pip install -e .``) so that the
tools import them without touching ``sys.path``.
"""

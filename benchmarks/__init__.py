"""CPU benchmark of the DUC network (``tools/bench.py``); not part of the installed package.

Modules: ``machine`` (CPU description, GEMM peak), ``torch_duc`` (PyTorch eager peer),
``variants`` (every measured way of running the network, built inside a worker process),
``worker`` (the worker process), ``process`` (a worker seen from the suite), ``scoring``
(ground truth, mIoU, targets), ``suite`` (orchestration), ``report`` (the table).
"""

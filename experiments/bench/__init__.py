"""CPU benchmarks of the DUC network (``tools/bench.py``) and of the data pipeline (``tools/bench_data.py``).

Modules: ``machine`` (CPU description, GEMM peak), ``torch_duc`` (PyTorch eager peer),
``variants`` (every measured way of running the network, built inside a worker process),
``worker`` (the worker process), ``process`` (a worker seen from the suite), ``scoring``
(ground truth, mIoU, targets), ``suite`` (orchestration), ``report`` (the table);
``data_pipeline``: the data pipeline against its PNG decode floor.
"""

"""``tools/demo.py``: synthetic data, a small DUC-HDC training, test.py's code path, official metrics."""

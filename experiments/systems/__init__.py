"""The comparison in miniature: every segmentation system trained on the synthetic street scenes
under one budget, on the project's engine (``tools/compare_systems.py``)."""

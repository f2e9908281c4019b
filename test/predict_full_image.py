#!/usr/bin/env python
"""The original's test entry point: ``cd test && python predict_full_image.py ../configs/test/test_full_image.cfg``.

A thin wrapper that runs the repository's ``test.py`` (same arguments and outputs: ``score/``,
``color/``, ``overlay/``, ``confidence.txt``, metrics); relative paths in the config are
resolved against the current directory, as in the original.
"""
import os
import runpy

if __name__ == "__main__":
    runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test.py"),
                   run_name="__main__")

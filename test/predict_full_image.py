#!/usr/bin/env python
"""The original's test entry point: ``cd test && python predict_full_image.py ../configs/test/test_full_image.cfg``.

As a script, a thin wrapper that runs the repository's ``test.py`` (same arguments and outputs:
``score/``, ``visualization/``, ``color/``, ``overlay/``, ``confidence.txt``, metrics); relative
paths in the config are resolved against the current directory, as in the original. As a
module it provides the original's ``ImageListTester`` (``from predict_full_image import
ImageListTester``), which is :class:`tusimple_duc.test.image_list_tester.ImageListTester`.
"""
import os
import runpy

from tusimple_duc.test.image_list_tester import ImageListTester

__all__ = ["ImageListTester"]

if __name__ == "__main__":
    runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test.py"),
                   run_name="__main__")

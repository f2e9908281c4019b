"""``ImageListTester``: the original's ``test/predict_full_image.py`` class, over test.py's pipeline.

``ImageListTester(config)`` builds the original's :class:`~tusimple_duc.test.tester.Tester`
(the network loaded once); ``predict_single(item)`` segments one list line (2 or 3 fields,
as the original read field 1 only) and ``predict_all()`` the config's ``image_list``, both
with :func:`tusimple_duc.pipelines.segment.run_test`, so they write what test.py writes
(``score/``, ``visualization/``, ... named by the line's last path component).
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

from tusimple_duc.core.config_parser import ConfigSource
from tusimple_duc.data.lists import parse_list_line
from tusimple_duc.pipelines.segment import SegmentationRun, run_test
from tusimple_duc.test.tester import Tester


class ImageListTester:
    """Segments the images of a test list with the checkpoint and protocol of a test config.

    Attributes (the original's): ``config`` (the package's ``TestConfig``), ``model_dir``,
    ``model_prefix``, ``model_epoch``, ``result_dir``, ``image_list``, ``test_img_dir``,
    ``result_shape``, ``tester``.
    """

    def __init__(self, config: ConfigSource) -> None:
        self.tester = Tester(config)
        self.config = self.tester.config
        model, data = self.config.model, self.config.data
        self.model_dir, self.model_prefix, self.model_epoch = model.model_dir, model.model_prefix, model.model_epoch
        self.result_dir = model.result_dir
        self.image_list, self.test_img_dir = data.image_list, data.test_img_dir
        self.result_shape = list(data.result_shape) if data.result_shape else None

    def predict_single(self, item: str) -> Tuple[float, str]:
        """Segment the image of one list line and write its outputs; returns ``(confidence, image path)``.

        Nothing is evaluated and, as the original, no confidence file is written (``predict_all``
        writes the list's; those of an earlier ``predict_all`` are left as they are).
        """
        entry = parse_list_line(item.strip("\r\n"), f"{self.image_list or 'item'}: item {item.strip()!r}")
        config = dataclasses.replace(self.config, output=dataclasses.replace(self.config.output, evaluate=False))
        run = run_test(config, show_progress=False, net=self.tester.net, entries=[entry], write_confidences=False)
        return run.confidences[0], run.image_paths[0]

    def predict_all(self) -> SegmentationRun:
        """Segment every image of ``image_list`` (test.py's run: outputs, confidence files, metrics)."""
        return run_test(self.config, show_progress=False, net=self.tester.net)

"""``CityLoader``: the original's training iterator, over :class:`tusimple_duc.data.iterator.SegmentationIter`.

Constructor ``CityLoader(data_list, input_args)`` with the original's ``input_args`` keys
(see :mod:`tusimple_duc.core.utils`; plus ``batch_size`` (4), ``data_name`` (['data']),
``label_name`` (['seg_loss_label']), ``multi_thread`` / ``n_thread`` (worker processes) and the
optional ``seed`` (0)). Batches are the package's: the released augmentation, labels in
the flattened DUC layout, the last partial batch dropped; order and augmentation are a
function of ``(seed, epoch)``, ``reset()`` starts the next epoch (a new order). Unlike the
original, ``data_name`` / ``label_name`` attributes are the single names (strings) and
``shuffle`` is the package's flag, not a method.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

from tusimple_duc.core.utils import sampling_spec_from_input_args
from tusimple_duc.data.iterator import RELEASED_LABEL_NAME, SegmentationDataset, SegmentationIter
from tusimple_duc.data.lists import read_list
from tusimple_duc.errors import ConfigError

#: The original's default number of loader processes with ``multi_thread``.
DEFAULT_THREADS = 7


class CityLoader(SegmentationIter):
    """Cityscapes training batches for ``mx.mod.Module.fit`` (``data`` (N, 3, rows, cols), ``seg_loss_label``
    (N, r*r*h*w))."""

    def __init__(self, data_list: str, input_args: Mapping[str, Any]) -> None:
        self.input_args: Dict[str, Any] = dict(input_args)
        self.data_list = data_list
        spec = sampling_spec_from_input_args(self.input_args)
        self.data_path = self.input_args.get("data_path", "")
        data_name = self.input_args.get("data_name", ["data"])[0]
        label_name = self.input_args.get("label_name", [RELEASED_LABEL_NAME])[0]
        self.multi_thread = bool(self.input_args.get("multi_thread", False))
        self.n_thread = int(self.input_args.get("n_thread", DEFAULT_THREADS))
        batch_size = int(self.input_args.get("batch_size", 4))
        dataset = SegmentationDataset(data_list, spec, self.data_path, self.input_args.get("label_path", ""),
                                      seed=int(self.input_args.get("seed", 0)))
        super().__init__(dataset, batch_size, shuffle=True, num_workers=self.n_thread if self.multi_thread else 0,
                         last_batch="discard", data_name=data_name, label_name=label_name)
        self._check_shapes()

    def _check_shapes(self) -> None:
        """The ``data_shape`` / ``label_shape`` the caller declared must be the batches'."""
        for key, provided in (("data_shape", self.provide_data), ("label_shape", self.provide_label)):
            declared = self.input_args.get(key)
            if declared is not None and tuple(declared[0]) != tuple(provided[0].shape):
                raise ConfigError(f"CityLoader {self.data_list}: input_args[{key!r}] = {tuple(declared[0])} but "
                                  f"the batches are {tuple(provided[0].shape)}")

    @staticmethod
    def read_data(data_list: str) -> List[list]:
        """The list's items ``[image, label]`` or ``[image, label, [row, col]]`` (validated by the package)."""
        return [[entry.image, entry.label] + ([[format(c, "g") for c in entry.centre]] if entry.centre else [])
                for entry in read_list(data_list)]

    @property
    def data(self) -> List[list]:
        """The list's items (as :meth:`read_data`)."""
        return self.read_data(self.data_list)

    def get_batch_size(self) -> int:
        """Samples per batch."""
        return self.batch_size

    def shutdown(self) -> None:
        """Stop the loader processes."""
        self.close()

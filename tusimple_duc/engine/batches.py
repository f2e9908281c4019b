"""Training and validation batches of a config, and their split across devices.

Labels are 2-D maps at the network's prediction stride ``s`` (``label_layout='map'``,
``label_stride = spec.prediction_stride``): the loss compares them with ``net(x)``
``(N, L, H/s, W/s)`` directly. (The released flattened DUC layout is the same
information, see ``tusimple_duc.layout``.)

Training data: the released augmentation (``[data]`` keys), order and augmentation a
function of ``(seed, epoch)``; worker ``rank`` of ``num_workers`` reads part ``rank`` of
every epoch (``tusimple_duc.data.iterator``). With ``patch_scheme = 12fold`` the network
input is ``inner_crop`` taken inside the ``crop_shape`` patch around each list centre.

Validation (``use_val``): the released ``val_args``: scale 1, no jitter, no flip, a fixed
``crop_shape`` crop (``inner_crop`` for 12-fold) around each line's centre (the image centre
for 3-field lines), in list order, on the chief worker; the last partial batch is dropped
(``last_batch='discard'``), as the released loader's ``_get_next`` stops before a batch it
cannot fill.
It measures crop-level mIoU at the prediction stride; the official full-resolution
numbers come from ``test.py``.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np

from tusimple_duc.config import TrainConfig
from tusimple_duc.data.iterator import SegmentationDataset, SegmentationIter
from tusimple_duc.data.sample import SamplingSpec
from tusimple_duc.errors import ConfigError
from tusimple_duc.models.presets import ModelSpec
from tusimple_duc.models.systems import SystemSpec
from tusimple_duc.runtime import physical_core_count


def sampling_spec(config: TrainConfig, model: Union[ModelSpec, SystemSpec]) -> SamplingSpec:
    """The training :class:`SamplingSpec` of ``config`` for the network ``model``."""
    data, net = config.data, config.network
    twelve_fold = data.patch_scheme == "12fold"
    # A comparison system has no DUC layout: its 'map' label needs only the prediction stride.
    duc_geometry = dict(ds_rate=model.output_stride, cell_width=model.cell_width) if isinstance(model, ModelSpec) else {}
    return SamplingSpec(
        crop_shape=data.inner_crop if twelve_fold else data.crop_shape,
        scale_factors=data.scale_factors, random_bound=data.random_bound, use_mirror=data.use_mirror,
        use_random_crop=data.use_random_crop, rgb_mean=data.rgb_mean,
        convert_label=data.dataset if data.convert_label else "none", num_classes=net.label_num,
        label_layout="map", label_stride=model.prediction_stride, **duc_geometry, ignore_label=net.ignore_label, patch_scheme=data.patch_scheme,
        patch_shape=data.crop_shape)


def validation_spec(train_spec: SamplingSpec) -> SamplingSpec:
    """The released validation sampling: scale 1, no jitter, no flip, same crop size."""
    return dataclasses.replace(train_spec, scale_factors=(1.0,), use_random_crop=False,
                               use_mirror=False, patch_scheme="7fold")


def loader_processes(config: TrainConfig) -> int:
    """Prefetch processes: ``num_workers``, else the core count with ``multi_thread``, else 0."""
    if config.data.num_workers is not None:
        return config.data.num_workers
    return physical_core_count() if config.env.multi_thread else 0


def train_dataset(config: TrainConfig, spec: SamplingSpec) -> SegmentationDataset:
    """The training list, read and checked (files, geometry) without reading an image's pixels."""
    data = config.data
    return SegmentationDataset(data.train_list, spec, data.data_dir, data.label_dir, seed=config.env.seed)


def validation_dataset(config: TrainConfig, spec: SamplingSpec) -> SegmentationDataset:
    """The validation list, read and checked, sampled as :func:`validation_spec` says."""
    data = config.data
    return SegmentationDataset(data.val_list, validation_spec(spec), data.data_dir, data.label_dir,
                               seed=config.env.seed)


def train_iterator(config: TrainConfig, spec: SamplingSpec, rank: int = 0, num_workers: int = 1,
                   dataset: Optional[SegmentationDataset] = None) -> SegmentationIter:
    """Batches of part ``rank`` of ``num_workers`` of the training list (``dataset``: it, already read)."""
    data = config.data
    dataset = dataset if dataset is not None else train_dataset(config, spec)
    return SegmentationIter(dataset, data.batch_size, shuffle=True, num_workers=loader_processes(config),
                            last_batch=data.last_batch, num_parts=num_workers, part_index=rank,
                            skip_bad=data.skip_bad)


def validation_iterator(config: TrainConfig, spec: SamplingSpec,
                        dataset: Optional[SegmentationDataset] = None) -> SegmentationIter:
    """The validation list's full batches, in list order (the last partial batch dropped)."""
    data = config.data
    dataset = dataset if dataset is not None else validation_dataset(config, spec)
    return SegmentationIter(dataset, data.batch_size, shuffle=False, num_workers=loader_processes(config),
                            last_batch="discard", skip_bad=data.skip_bad)


def batches_per_epoch(num_samples: int, batch_size: int, num_workers: int, last_batch: str) -> int:
    """Batches of one worker's part per epoch (without skipped samples)."""
    part = num_samples // num_workers
    return part // batch_size if last_batch == "discard" else -(-part // batch_size)


def module_slice_sizes(batch_size: int, devices: int) -> Optional[List[int]]:
    """Samples per device as MXNet's ``Module`` splits a batch (``_split_input_slice`` with
    equal work loads), or None when that split leaves a device empty (``Module`` refuses it).

    Every device gets ``round(batch_size / devices)`` (Python's rounding, half to even), the
    last one also what is left; slices past the batch are cut. E.g. 3 over 2 devices: 2 + 1;
    5 over 3: 2 + 2 + 1; 6 over 4: None (2 + 2 + 2 leave nothing for the fourth).
    """
    share = round(batch_size / devices)
    sizes = [share] * devices
    sizes[-1] += max(batch_size - share * devices, 0)
    out, begin = [], 0
    for size in sizes:
        end = min(begin + size, batch_size)
        if begin >= end:
            return None
        out.append(end - begin)
        begin = end
    return out


def check_device_split(batch_size: int, devices: int, source: str = "<config>") -> None:
    """Refuse a ``[data] batch_size`` that ``Module`` cannot split over ``devices``."""
    if module_slice_sizes(batch_size, devices) is None:
        raise ConfigError(f"{source}: [data] batch_size: {batch_size} samples cannot be split over {devices} devices "
                          f"as MXNet's Module splits a batch ({round(batch_size / devices)} per device leaves "
                          f"a device empty)")


def device_slices(data: np.ndarray, label: np.ndarray, count: int,
                  ignore_label: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Consecutive slices of a batch, one per device, of ``Module``'s sizes
    (:func:`module_slice_sizes`: 3 samples over 2 devices are 2 + 1).

    A batch ``Module`` could not split (only a last partial batch, ``last_batch = keep``;
    configured batch sizes are checked by :func:`check_device_split`) is cut into sizes that
    differ by at most 1, the larger first. Every device must run forward and backward in
    every update (the kvstore sums all of their gradients), so when the batch has fewer
    samples than devices the missing slices are copies of the first sample with every label
    ignored: they add nothing to the loss or its gradient (the first ``min(N, count)``
    slices are the batch's own).

    Parameters
    ----------
    data : (N, 3, H, W) float32 images
    label : (N, h, w) float32 labels
    count : number of devices
    ignore_label : label value of the filler slices

    Returns
    -------
    ``count`` pairs ``(data_i, label_i)`` of host arrays
    """
    total = data.shape[0]
    sizes = module_slice_sizes(total, count) or [total // count + (i < total % count) for i in range(count)]
    pieces, begin = [], 0
    for size in sizes:
        if size == 0:
            pieces.append((data[:1], np.full_like(label[:1], ignore_label)))
        else:
            pieces.append((data[begin:begin + size], label[begin:begin + size]))
        begin += size
    return pieces


def to_devices(pieces: Sequence[Tuple[np.ndarray, np.ndarray]],
               contexts: Sequence[mx.Context]) -> List[Tuple[mx.nd.NDArray, mx.nd.NDArray]]:
    """Copy each ``(data_i, label_i)`` to ``contexts[i]``."""
    return [(mx.nd.array(x, ctx=ctx, dtype=np.float32), mx.nd.array(y, ctx=ctx, dtype=np.float32))
            for (x, y), ctx in zip(pieces, contexts)]

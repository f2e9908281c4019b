"""One SGD update of a worker's batch, across devices and workers; validation.

An update (:meth:`SegmentationTrainer.step`) is the released solver's ``Module`` update:

1. the worker's batch is split into one slice per device as ``Module`` splits it
   (``batches.device_slices``: 3 samples over 2 devices are 2 + 1);
2. every device computes the summed cross-entropy ``CE_d`` of its non-ignored pixels and
   its count ``V_d``, and back-propagates ``CE_d / max(V_d, 1)`` (``SoftmaxOutput``'s
   ``normalization='valid'``, ``loss.device_objective``); a network with several outputs
   (``net.loss_weights``: PSPNet's auxiliary head, multi-scale input training) back-propagates
   the weighted sum of those terms, one per output (``loss.weighted_device_objective``);
3. the workers exchange ``(loss sum, valid pixels, has a batch, gradient squares)``
   (``contexts.WorkerSum``; identity in one process): a non-finite loss or gradient stops
   every worker before any parameter changes (:class:`TrainingDivergedError`), a worker
   out of batches ends the epoch for all;
4. the kvstore sums the gradients of all devices (Gluon's Trainer) and workers
   (``contexts.WorkerAllreduce``) and every device applies
   ``SGD(momentum, wd, clip_gradient)`` with ``rescale_grad = 1 / batch_size`` (the
   per-worker ``[data] batch_size``, as the released solver passed it) and the learning
   rate of the schedule at this update. Clipping acts element-wise on the rescaled
   gradient; weight decay only on parameters named ``*_weight`` or ``*_gamma`` (MXNet's
   rule for ``Module``, :func:`apply_module_multipliers`). Parameters with
   ``grad_req = 'null'`` (FCN's fixed bilinear upsampling, a frozen front-end) are not
   updated, exchanged or decayed.

BatchNorm: with ``bn_use_global_stats`` (released) the statistics are frozen; when BN
learns, each device normalises with its own slice's statistics and moves its own running
statistics (no synchronised BN, as in the released MXNet solver). At every epoch's end
:meth:`SegmentationTrainer.average_over_devices` does what ``Module.fit`` does there
(``get_params`` then ``set_params``): every parameter and running statistic becomes the mean
of its copies on this worker's devices, on every device, before the checkpoint is written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from tusimple_duc.config import ModelSection
from tusimple_duc.engine.batches import device_slices, to_devices
from tusimple_duc.engine.contexts import DeviceSetup, WorkerAllreduce, WorkerSum
from tusimple_duc.engine.loss import (as_score_maps, loss_weights, masked_cross_entropy_sum,
                                      weighted_device_objective)
from tusimple_duc.engine.metrics import SegmentationMetrics
from tusimple_duc.engine.optimizer_state import load_optimizer_state, ready_trainer, save_optimizer_state
from tusimple_duc.engine.schedules import LRSchedule
from tusimple_duc.errors import DUCError


class TrainingDivergedError(DUCError):
    """The loss or the parameters became NaN or infinite."""


@dataclass(frozen=True)
class StepResult:
    """What one update did: global ``loss`` (per non-ignored pixel), ``valid_pixels`` of the
    global batch, the ``lr`` applied and the update number ``update`` (1-based)."""

    loss: float
    valid_pixels: float
    lr: float
    update: int


#: Suffixes of the parameter names MXNet's ``Optimizer`` decays when it knows the names
#: (``Module``'s ``param_idx2name``): every other parameter has ``wd_mult = 0``.
DECAYED_SUFFIXES = ("_weight", "_gamma")


def apply_module_multipliers(params: Iterable[gluon.Parameter]) -> None:
    """Set ``lr_mult = 1`` and ``wd_mult`` as ``Module`` does: 1 for names ending in
    ``_weight`` or ``_gamma``, 0 for the others (biases, BatchNorm betas)."""
    for param in params:
        param.lr_mult = 1.0
        param.wd_mult = 1.0 if param.name.endswith(DECAYED_SUFFIXES) else 0.0


def sgd_parameters(model: ModelSection) -> Dict[str, float]:
    """Gluon SGD arguments of ``[model]`` (the learning rate is set before every update,
    ``rescale_grad`` by ``Trainer.step``)."""
    params = dict(learning_rate=model.lr, momentum=model.momentum, wd=model.weight_decay, rescale_grad=1.0)
    if model.clip_gradient > 0:
        params["clip_gradient"] = model.clip_gradient
    return params


class SegmentationTrainer:
    """A network, its optimizer and learning-rate schedule on the devices of one worker.

    Parameters
    ----------
    net : initialised and (for speed) hybridized network, ``net(x) -> (N, L, H/s, W/s)``, or a
        tuple of score maps (main first) with one ``net.loss_weights`` entry each
    devices : contexts, kvstore and rank of this worker
    schedule : learning rate per update
    model : ``[model]`` section (momentum, weight decay, clipping)
    ignore_label : label excluded from loss and metrics
    batch_size : per-worker ``[data] batch_size``; the summed gradient is multiplied by
        ``1 / batch_size`` (``Module``'s ``rescale_grad``)
    updates : updates already applied in this run (resume)
    class_weights : optional (L,) weight of each class in the loss (``loss.masked_cross_entropy_sum``;
        not in the released solver, which weighs every pixel alike)
    """

    def __init__(self, net: gluon.HybridBlock, devices: DeviceSetup, schedule: LRSchedule,
                 model: ModelSection, ignore_label: int, batch_size: int, updates: int = 0,
                 class_weights: Optional[Sequence[float]] = None) -> None:
        self.net = net
        self.devices = devices
        self.schedule = schedule
        self.model = model
        self.ignore_label = ignore_label
        self.batch_size = batch_size
        self.updates = updates
        self._class_weights = (None if class_weights is None else
                               [mx.nd.array(np.asarray(class_weights, dtype=np.float32), ctx=c)
                                for c in devices.contexts])
        params = net.collect_params()
        apply_module_multipliers(params.values())
        local_kvstore = None if devices.distributed else devices.kvstore
        self.trainer = gluon.Trainer(params, "sgd", sgd_parameters(model), kvstore=local_kvstore,
                                     update_on_kvstore=False if local_kvstore is not None else None)
        # Gluon creates its kvstore at the first step, copying the first device's values to the
        # others: after that step's forward, it would overwrite the other devices' BatchNorm
        # statistics. Created now, it copies the (equal) initial values, as Module's set_params.
        ready_trainer(self.trainer)
        self._allreduce = WorkerAllreduce(devices.kvstore, params.values()) if devices.distributed else None
        self._exchange = WorkerSum(devices, key=len(list(params.keys())), size=4)

    # ------------------------------------------------------------------ optimizer state
    def save_optimizer(self, path: str) -> dict:
        """Write the momentum of every parameter to ``path`` (``mx.nd.save``, no pickle);
        returns the optimizer's counters for the JSON training state (``optimizer_state.py``)."""
        return save_optimizer_state(self.trainer, path)

    def load_optimizer(self, path: str, saved: Optional[dict], trust_pickle: bool = False) -> None:
        """Read :meth:`save_optimizer`'s file and counters ``saved`` (a pickled Gluon file only
        with ``trust_pickle``); the config's hyper-parameters stay in effect."""
        load_optimizer_state(self.trainer, path, saved, trust_pickle)
        optimizer = self.trainer.optimizer
        for key, value in sgd_parameters(self.model).items():
            if key != "learning_rate":
                setattr(optimizer, key, value)
        if self.model.clip_gradient <= 0:
            optimizer.clip_gradient = None

    # ------------------------------------------------------------------ one update
    def step(self, data: Optional[np.ndarray], label: Optional[np.ndarray],
             metrics: Sequence[SegmentationMetrics] = (), where: str = "") -> Optional[StepResult]:
        """Apply one update on the worker's batch ``data`` (N, 3, H, W), ``label`` (N, h, w).

        ``data=None`` means this worker has no batch left. Returns None, without updating,
        when any worker had no batch (the epoch is over), else the :class:`StepResult`.
        ``metrics`` are updated with this batch. Raises :class:`TrainingDivergedError` if the
        global loss is not finite (parameters untouched); ``where`` locates the batch in
        that message.
        """
        contexts = self.devices.contexts
        if data is None:
            self._exchange([0.0, 0.0, 0.0, 0.0])
            return None
        pieces = device_slices(data, label, len(contexts), self.ignore_label)
        on_devices = to_devices(pieces, contexts)
        with autograd.record():
            outputs = [as_score_maps(self.net(x)) for x, _ in on_devices]
            weights = loss_weights(self.net, len(outputs[0]))
            parts = [weighted_device_objective(maps, y, weights, self.ignore_label,
                                               None if self._class_weights is None else self._class_weights[i])
                     for i, (maps, (_, y)) in enumerate(zip(outputs, on_devices))]
        autograd.backward([objective for objective, _, _ in parts])
        scores = [maps[0] for maps in outputs]
        local_loss = float(sum(total.asscalar() for _, total, _ in parts))
        local_valid = float(sum(valid.asscalar() for _, _, valid in parts))
        local_grad_sq = self._gradient_square_sum()
        loss_sum, valid, workers_with_batch, grad_sq = self._exchange([local_loss, local_valid, 1.0, local_grad_sq])
        if workers_with_batch < self.devices.num_workers:
            return None
        update = self.updates + 1
        lr = self.schedule(update)
        if not math.isfinite(loss_sum) or not math.isfinite(grad_sq):
            what = f"loss is {loss_sum}" if not math.isfinite(loss_sum) else f"gradient is {grad_sq} (loss {loss_sum:.4g})"
            raise TrainingDivergedError(
                f"{what} at {where or 'update ' + str(update)} (update {update}, lr {lr:.3g}): "
                f"training diverged; this update was not applied")
        own = min(data.shape[0], len(contexts))  # slices after these are ignored fillers
        for metric in metrics:
            metric.update(scores[:own], [y for _, y in pieces[:own]], local_loss, local_valid)
        if self._allreduce is not None:
            self._allreduce()
        self.trainer.set_learning_rate(lr)
        self.trainer.step(self.batch_size)
        self.updates = update
        return StepResult(loss=loss_sum / max(valid, 1.0), valid_pixels=valid, lr=lr, update=update)

    def _gradient_square_sum(self) -> float:
        """Sum of squares of every gradient on every device (NaN or inf if any entry is).

        A NaN input can leave the loss finite (oneDNN's fused ReLU maps NaN to 0) while the
        gradients of the first layer are NaN: both are checked before an update.
        """
        squares = [(grad * grad).sum() for param in self.net.collect_params().values()
                   if param.grad_req != "null" for grad in param.list_grad()]
        return float(mx.nd.add_n(*[s.as_in_context(mx.cpu()) for s in squares]).asscalar()) if squares else 0.0

    # ------------------------------------------------------------------ parameters
    def average_over_devices(self) -> None:
        """``Module.fit``'s epoch end: replace every parameter and BatchNorm running statistic
        on every device by the mean of its copies on this worker's devices.

        ``Module.get_params`` computes ``sum(copy on the CPU) / devices`` per array (the same
        float32 sum, in device order, here) and ``set_params`` writes it back to every device.
        With BatchNorm learning the devices' statistics differ (each saw its own slice); the
        parameters are the same on every device, so their mean only rounds (and is exact for
        two devices). Workers of a ``dist_sync`` job average their own devices only:
        ``Module`` never sends auxiliary states through the kvstore.
        """
        contexts = self.devices.contexts
        mx.nd.waitall()  # BatchNorm writes its running statistics outside the engine's dependencies
        if len(contexts) == 1:
            return
        for param in self.net.collect_params().values():
            copies = param.list_data()
            param.set_data(sum(copy.copyto(mx.cpu()) for copy in copies) / len(copies))
        mx.nd.waitall()

    def parameter_arrays(self) -> Dict[str, np.ndarray]:
        """Host copies of every parameter (first device), by Gluon name."""
        context = self.devices.contexts[0]
        return {name: p.data(context).asnumpy() for name, p in self.net.collect_params().items()}


def validate(net: gluon.HybridBlock, batches, contexts: Sequence[mx.Context], num_classes: int,
             ignore_label: int) -> SegmentationMetrics:
    """Loss, pixel accuracy and mIoU of ``net`` (inference mode) over ``batches``
    (an ``mx.io.DataIter`` of (N, 3, H, W) images and (N, h, w) labels)."""
    metrics = SegmentationMetrics(num_classes, ignore_label)
    for batch in batches:
        data, label = batch.data[0].asnumpy(), batch.label[0].asnumpy()
        pieces = device_slices(data, label, len(contexts), ignore_label)
        on_devices = to_devices(pieces, contexts)
        own = min(data.shape[0], len(contexts))  # slices after these are ignored fillers
        scores = [as_score_maps(net(x))[0] for x, _ in on_devices[:own]]
        loss = sum(masked_cross_entropy_sum(s, y, ignore_label)[0].asscalar()
                   for s, (_, y) in zip(scores, on_devices))
        valid = sum(float((y != ignore_label).sum()) for _, y in pieces[:own])
        metrics.update(scores, [y for _, y in pieces[:own]], loss, valid)
    return metrics

"""``train(config, resume)``: everything ``train.py`` does, epoch by epoch.

Epochs are counted like MXNet's ``Module.fit``: a run fine-tuning from ``load_epoch`` e
trains epochs ``e .. num_epochs - 1`` and checkpoint ``k`` is written after epoch
``k - 1``, every ``checkpoint_interval`` epochs and after the last one. After every epoch
(checkpoint or not) the parameters and BatchNorm statistics of the devices are averaged
and set back on every device, as ``Module.fit`` does (``trainer.average_over_devices``).
The learning-rate schedule counts updates from the start of the run (``schedules.py``).

Files of a run (chief only), in its own folder ``<model_dir>/<save_model_prefix>/<YYYY_MM_DD_HH:MM:SS>/``
(``run_dirs.py``, the original solver's layout): ``train_<time>.cfg`` (the resolved config,
recording the network trained), ``<prefix>_<time>.log``, ``<prefix>-metrics.jsonl``
(``logs.py``), ``<prefix>-summary.txt`` (``[misc] draw_network``), ``<prefix>-symbol.json``,
``<prefix>-%04d.params``, ``.states``, ``.state.json`` (``state.py``) and ``run.lock``.

Once the config, the network and the lists (files and image sizes) are checked, before any
pixel is read or weight loaded, the chief creates or finds the folder and locks it for the
run's life (``run_folder.open_run_folder``). A run that stops after that writes why into its
log (``stopped: <error>``) before the error reaches ``train.py``.

``resume=True`` continues from the newest complete checkpoint of the newest run folder of
the prefix (``resume=PATH``: of that folder), if it is intact and was written with the same
config (``run_folder.check_resume``): weights, optimizer state, update count (lr position),
RNG states; the data order is a function of ``(seed, epoch)``. With the same config and seed
it ends with the same parameters as an uninterrupted run (see ``docs/TRAINING.md`` for what
could still differ).
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Union

import mxnet as mx
import numpy as np

from tusimple_duc.config import TrainConfig, to_ini
from tusimple_duc.engine import batches as batch_setup
from tusimple_duc.engine import network
from tusimple_duc.engine.contexts import DeviceSetup, check_kvstore, make_contexts, setup_devices
from tusimple_duc.engine.logs import EpochBar, MetricsLog, close_logging, log_to_file_only, setup_logging
from tusimple_duc.engine.metrics import SegmentationMetrics, metric_legend, reported_keys
from tusimple_duc.engine.run_dirs import config_copy_path, log_path
from tusimple_duc.engine.run_folder import RunFolder, check_resume, config_record, open_run_folder
from tusimple_duc.engine.schedules import check_schedule, schedule_from_config
from tusimple_duc.engine.state import (TrainingState, capture_rng, epoch_seed, optimizer_path, parameter_digest,
                                       restore_rng, save_training_state)
from tusimple_duc.engine.trainer import SegmentationTrainer, TrainingDivergedError, validate
from tusimple_duc.errors import CheckpointError, OutputError
from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.io.checkpoint import load_checkpoint, params_path, save_checkpoint
from tusimple_duc.io.checksum import file_sha1, state_path


@dataclass
class TrainResult:
    """Outcome of :func:`train`: ``epoch`` reached, ``updates`` applied in the run, the last
    ``checkpoint`` (.params path, None if none was written), ``params_sha1`` of the final
    parameters, the last epoch's training ``metrics`` and ``validation`` values (or None),
    the ``run_dir`` written (None on a non-chief worker of a fresh run)."""

    epoch: int
    updates: int
    checkpoint: Optional[str]
    params_sha1: str
    metrics: Dict[str, float] = field(default_factory=dict)
    validation: Optional[Dict[str, float]] = None
    run_dir: Optional[str] = None


class _Run:
    """State shared by the phases of one :func:`train` call."""

    def __init__(self, config: TrainConfig, devices: DeviceSetup, folder: RunFolder, recorded: TrainConfig) -> None:
        self.config = config
        self.recorded = recorded  # the config saved with the run: the network trained (network.trained_config)
        self.devices = devices
        self.prefix = folder.prefix or ""
        chief = devices.is_chief and folder.run_dir is not None
        self.log = setup_logging(log_path(folder.run_dir, config.model.save_model_prefix) if chief else None,
                                 devices.rank)
        self.metrics_log = MetricsLog(self.prefix + "-metrics.jsonl" if chief else None)
        self.keys = reported_keys(config.model.eval_metric, config.source)
        self.last_checkpoint: Optional[str] = None

    # -------------------------------------------------------------- checkpoints
    def save(self, trainer: SegmentationTrainer, epoch: int, updates_per_epoch: int, begin_epoch: int) -> None:
        """Write checkpoint ``epoch`` (chief only), refusing non-finite parameters (every
        worker checks, so that all of them stop together)."""
        arrays = trainer.parameter_arrays()
        bad = [name for name, value in arrays.items() if not np.isfinite(value).all()]
        if bad:
            raise TrainingDivergedError(
                f"parameter {bad[0]} (and {len(bad) - 1} more) is NaN or infinite after epoch {epoch - 1}: "
                f"checkpoint {epoch} not written; last good checkpoint: {self.last_checkpoint or 'none'}")
        if not self.devices.is_chief:
            return
        state = TrainingState(epoch=epoch, updates=trainer.updates, updates_per_epoch=updates_per_epoch,
                              begin_epoch=begin_epoch, seed=self.config.env.seed,
                              num_workers=self.devices.num_workers, params_sha1=parameter_digest(arrays),
                              rng=capture_rng(), config=config_record(self.recorded))
        try:
            _, params_file = save_checkpoint(trainer.net, self.prefix, epoch, self.config.network.ignore_label)
            state.params_file_sha1 = file_sha1(params_file)
            save_training_state(self.prefix, state, trainer.save_optimizer)
        except OSError as err:  # e.g. a full disk: every file is atomic, the previous checkpoint is intact
            self.remove_incomplete(epoch)
            raise OutputError(f"{self.prefix}: checkpoint {epoch} not written ({err.strerror or err}); "
                              f"last complete checkpoint: {self.last_checkpoint or 'none'}") from None
        self.last_checkpoint = params_file
        self.metrics_log.write({"kind": "checkpoint", "epoch": epoch, "path": params_file, "time": time.time()})
        self.log.info("Saved checkpoint to \"%s\"", params_file)

    def remove_incomplete(self, epoch: int) -> None:
        """Delete the ``.params`` / ``.states`` of checkpoint ``epoch`` written before its
        ``.state.json`` failed (they are this run's own, in its own folder)."""
        if os.path.exists(state_path(self.prefix, epoch)):
            return
        for path in (params_path(self.prefix, epoch), optimizer_path(self.prefix, epoch)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    # -------------------------------------------------------------- one epoch
    def train_epoch(self, trainer: SegmentationTrainer, data_iter, epoch: int, updates_per_epoch: int,
                    num_classes: int) -> Dict[str, float]:
        """Train one epoch; returns its training metrics."""
        config, chief = self.config, self.devices.is_chief
        ignore = config.network.ignore_label
        window, whole = SegmentationMetrics(num_classes, ignore), SegmentationMetrics(num_classes, ignore)
        bar = EpochBar(epoch, updates_per_epoch, enabled=chief)
        data_iter.set_epoch(epoch)
        batches = iter(data_iter)
        batch_index, window_samples, window_start, samples_per_sec = 0, 0, time.time(), 0.0
        try:
            while True:
                batch = next(batches, None)
                data = None if batch is None else batch.data[0].asnumpy()
                label = None if batch is None else batch.label[0].asnumpy()
                result = trainer.step(data, label, (window,), where=f"epoch {epoch} batch {batch_index}")
                if result is None:
                    break
                window_samples += data.shape[0]
                samples_per_sec = window_samples / max(time.time() - window_start, 1e-9)
                bar.update(window.values(("loss",))["loss"], samples_per_sec, result.lr)
                batch_index += 1
                if batch_index % config.model.log_interval == 0:
                    self.report("train", epoch, batch_index, updates_per_epoch, result.lr, window,
                                samples_per_sec, result.update)
                    whole.absorb(window)
                    window.reset()
                    window_samples, window_start = 0, time.time()
        finally:
            bar.close()
        whole.absorb(window)
        values = whole.values(self.keys)
        self.metrics_log.write({"kind": "epoch", "epoch": epoch, "progress": epoch + 1.0, "batches": batch_index,
                                "update": trainer.updates, "time": time.time(), **values})
        self.log.info("Epoch[%d] Train-%s", epoch, "\t".join(f"{k}={v:.6f}" for k, v in values.items()))
        return values

    def report(self, kind: str, epoch: int, batch_index: int, updates_per_epoch: int, lr: float,
               metrics: SegmentationMetrics, samples_per_sec: float, update: int) -> None:
        """Log a running-metrics line and record (released ``Speedometer`` style)."""
        values = metrics.values(self.keys)
        self.metrics_log.write({"kind": kind, "epoch": epoch, "batch": batch_index, "update": update,
                                "progress": epoch + batch_index / max(updates_per_epoch, 1), "lr": lr,
                                "samples_per_sec": samples_per_sec, "time": time.time(), **values})
        self.log.info("Epoch[%d] Batch [%d]\tSpeed: %.2f samples/sec\t%s\tlr=%.4g", epoch, batch_index,
                      samples_per_sec, "\t".join(f"{k}={v:.6f}" for k, v in values.items()), lr)


def _resume_point(run: _Run, trainer: SegmentationTrainer, updates_per_epoch: int, epoch: int,
                  state: TrainingState, trust_pickled_states: bool) -> int:
    """Load checkpoint ``epoch`` (its training ``state``) into ``trainer``; returns ``epoch``."""
    load_checkpoint(trainer.net, run.prefix, epoch)  # checks the file digest it records
    if state.params_file_sha1 is None:  # a checkpoint of an earlier version: check the values' digest
        found = parameter_digest(trainer.parameter_arrays())
        if found != state.params_sha1:
            raise CheckpointError(f"{params_path(run.prefix, epoch)}: parameters differ from the digest of "
                                  f"checkpoint {epoch} (expected sha1 {state.params_sha1}, found {found})")
    trainer.load_optimizer(optimizer_path(run.prefix, epoch), state.optimizer, trust_pickled_states)
    trainer.updates = state.updates
    restore_rng(state.rng)
    run.last_checkpoint = params_path(run.prefix, epoch)
    if state.updates_per_epoch != updates_per_epoch or state.num_workers != run.devices.num_workers:
        run.log.warning("resuming with %d batches per epoch on %d workers; the checkpoint had %d on %d: "
                        "the data order and schedule differ from the interrupted run",
                        updates_per_epoch, run.devices.num_workers, state.updates_per_epoch, state.num_workers)
    dropped = run.metrics_log.rewind(epoch)
    run.log.info("Resumed from checkpoint %d (update %d); dropped %d metrics records after it",
                 epoch, state.updates, dropped)
    return epoch


def train(config: TrainConfig, resume: Union[bool, str] = False,
          trust_pickled_states: bool = False) -> TrainResult:
    """Train as configured (see the module docstring); raises DUCError subclasses on bad input
    and :class:`TrainingDivergedError` on a non-finite loss.

    ``resume``: True continues the newest run folder of the prefix, a path continues that
    run folder. ``trust_pickled_states``: ``resume`` may unpickle an old-format ``.states``.
    """
    check_kvstore(config.env, config.source)
    reported_keys(config.model.eval_metric, config.source)
    check_schedule(config.model, config.source)
    batch_setup.check_device_split(config.data.batch_size, len(make_contexts(config.env, config.source)),
                                   config.source)
    devices = setup_devices(config.env, config.source)
    recorded = network.trained_config(config)
    net = network.build_network(config)
    spec = batch_setup.sampling_spec(config, net.spec)
    train_data = batch_setup.train_dataset(config, spec)
    val_data = batch_setup.validation_dataset(config, spec) if config.data.use_val and devices.is_chief else None
    folder = open_run_folder(config, resume, devices.is_chief)
    train_iter = val_iter = None
    run: Optional[_Run] = None
    try:
        run = _Run(config, devices, folder, recorded)
        resume_from = check_resume(recorded, folder.prefix, trust_pickled_states) if resume else None
        for note in folder.notes + (resume_from[2] if resume_from else []):
            run.log.warning(note)
        train_iter = batch_setup.train_iterator(config, spec, devices.rank, devices.num_workers, train_data)
        updates_per_epoch = batch_setup.batches_per_epoch(len(train_iter.dataset), config.data.batch_size,
                                                          devices.num_workers, config.data.last_batch)
        schedule = schedule_from_config(config.model, updates_per_epoch, config.source)
        input_shape = (1, 3) + spec.crop_shape
        network.initialise(net, devices.contexts, config.env.seed, input_shape)
        begin_epoch = config.model.load_epoch if config.model.load_model_prefix else 0
        if not resume:
            loaded = network.load_initial_weights(net, config)
            run.log.info("Initialised %s: Xavier%s", config.network.preset, f" + {loaded}" if loaded else "")
        if folder.run_dir is not None and devices.is_chief:
            atomic_write_text(config_copy_path(folder.run_dir), to_ini(recorded))
            if config.misc.draw_network:
                network.write_summary(net, run.prefix + "-summary.txt", input_shape)
        net.hybridize(static_alloc=True)
        trainer = SegmentationTrainer(net, devices, schedule, config.model, config.network.ignore_label,
                                      config.data.batch_size)
        start_epoch = begin_epoch
        if resume_from is not None:
            start_epoch = _resume_point(run, trainer, updates_per_epoch, *resume_from[:2], trust_pickled_states)
        if val_data is not None:
            val_iter = batch_setup.validation_iterator(config, spec, val_data)
            if len(val_iter.dataset) < config.data.batch_size:
                run.log.warning("[data] val_list %s: %d sample(s), fewer than one batch of %d: validation scores "
                                "nothing (NaN), as the original's loader dropped the partial batch",
                                config.data.val_list, len(val_iter.dataset), config.data.batch_size)
        run.log.info("Training epochs %d..%d: %d batches of %d per epoch on %d device(s) x %d worker(s), "
                     "lr policy %s", start_epoch, config.model.num_epochs - 1, updates_per_epoch,
                     config.data.batch_size, len(devices.contexts), devices.num_workers, config.model.lr_policy)
        run.log.info("%s", metric_legend(run.keys))
        metrics: Dict[str, float] = {}
        validation = None
        for epoch in range(start_epoch, config.model.num_epochs):
            mx.random.seed(epoch_seed(config.env.seed, epoch, devices.rank))
            try:
                metrics = run.train_epoch(trainer, train_iter, epoch, updates_per_epoch, net.num_classes)
            except TrainingDivergedError as err:
                raise TrainingDivergedError(f"{err}; last good checkpoint: {run.last_checkpoint or 'none'}") from None
            trainer.average_over_devices()  # Module.fit's epoch end: get_params, set_params
            if val_iter is not None:
                validation = _validate(run, net, val_iter, epoch)
            last = epoch + 1 == config.model.num_epochs
            if (epoch + 1) % config.model.checkpoint_interval == 0 or last:
                run.save(trainer, epoch + 1, updates_per_epoch, begin_epoch)
        digest = parameter_digest(trainer.parameter_arrays())
        run.log.info("Finished at epoch %d, update %d; parameters sha1 %s", config.model.num_epochs,
                     trainer.updates, digest)
        return TrainResult(config.model.num_epochs, trainer.updates, run.last_checkpoint, digest, metrics, validation,
                           folder.run_dir)
    except BaseException as err:
        if run is not None:  # the run's log says why it stopped, not only the terminal
            log_to_file_only(f"stopped: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        raise
    finally:
        for data_iter in (train_iter, val_iter):
            if data_iter is not None:
                data_iter.close()
        close_logging()
        folder.release()


def _validate(run: _Run, net, val_iter, epoch: int) -> Dict[str, float]:
    val_iter.set_epoch(0)
    metrics = validate(net, val_iter, run.devices.contexts, net.num_classes, run.config.network.ignore_label)
    values = metrics.values(run.keys)
    run.metrics_log.write({"kind": "val", "epoch": epoch, "progress": epoch + 1.0, "time": time.time(),
                           "per_class_iou": metrics.per_class_iou(), **values})
    run.log.info("Epoch[%d] Validation-%s", epoch, "\t".join(f"{k}={v:.6f}" for k, v in values.items()))
    return values

"""Training: ``train.py``'s engine (devices, kvstore, schedule, checkpoints, resume, logs).

Public API (import the modules directly; this package imports nothing, so that
``tools/launch_local.py`` does not load MXNet)::

    run.train(config, resume=False) -> TrainResult          # everything train.py does (resume: True or a run folder)
    trainer.SegmentationTrainer(net, devices, schedule, model, ignore_label, batch_size).step(data, label)
    trainer.validate(net, batches, contexts, num_classes, ignore_label)
    trainer.TrainingDivergedError                            # DUCError: NaN/inf loss or parameters
    schedules.schedule_from_config(model, updates_per_epoch) -> LRSchedule (lr of update n)
    schedules.step_lr(...), schedules.poly_lr(...)
    contexts.setup_devices(env) -> DeviceSetup(contexts, kvstore, rank, num_workers)
    launcher.launch_local(worker_command, num_workers, num_servers=1, port=None) -> exit status
    plot.plot_training_log(jsonl_path, png_path)
    state.latest_checkpoint(prefix), state.load_training_state(prefix, epoch)

Modules: ``run`` (the epoch loop, checkpoints, resume), ``trainer`` (one update, validation),
``loss``, ``metrics``, ``schedules``, ``contexts`` (devices, kvstore, cross-worker sums),
``batches`` (data iterators of a config, device split), ``network`` (build, initialise,
summary), ``state`` (training-state files), ``run_dirs`` (where a run writes: its own
folder), ``run_lock`` (one process per run folder), ``run_folder`` (open a run's folder, resume
checks), ``logs`` (log file, JSON lines, tqdm bar),
``launcher`` (local parameter-server jobs), ``plot``. See docs/TRAINING.md.
"""

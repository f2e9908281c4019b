"""kvstore dist_sync on loopback (scheduler + server + 2 workers) and the local launcher."""
import io
import re
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from engine_helpers import (TINY_CFG, TRAIN_PY, newest_prefix, set_args, single_thread_env, tiny_config,
                            tiny_overrides)
from tusimple_duc.engine.batches import batches_per_epoch, sampling_spec, train_iterator
from tusimple_duc.engine.contexts import DeviceSetup
from tusimple_duc.engine.launcher import launch_local, port_is_free
from tusimple_duc.engine.network import build_network, initialise
from tusimple_duc.engine.schedules import schedule_from_config
from tusimple_duc.engine.trainer import SegmentationTrainer
from tusimple_duc.io.names import gluon_name
from tusimple_duc.io.paramfile import read_params

PORTS = range(9531, 9546)
EPOCHS = 2
WORKERS = 2


def launch_with_retry(command, workers):
    """Run the job on the first free port of PORTS; retry on the next one when the scheduler
    could not bind, or when ps-lite lost a node's connection while no worker reported an
    error (seen on a heavily loaded machine: 'there is no socket to node 11')."""
    for port in PORTS:
        if not port_is_free(port):
            continue
        out = io.StringIO()
        status = launch_local(command, workers, 1, port=port, out=out, env=single_thread_env(),
                              shutdown_timeout=20)
        text = out.getvalue()
        lost_node = "there is no socket to node" in text and "Traceback" not in text and "error:" not in text
        if status != 0 and (lost_node or re.search(r"bind|Address already in use", text, re.IGNORECASE)):
            continue
        return status, text
    pytest.fail(f"no usable port in {PORTS.start}..{PORTS.stop - 1}")


def reference_trainer(config, epochs=EPOCHS, devices_per_worker=1):
    """One process with the devices of every worker (Module's local kvstore semantics,
    checked against ``mx.mod.Module`` in test_original_semantics.py), fed the concatenation
    of the workers' batches and rescaled by the per-worker batch size: the original's
    dist_sync sums every worker's device gradients on the servers and applies
    ``rescale_grad = 1/B``. Worker ``r``'s samples land on devices ``r * devices_per_worker ..``."""
    contexts = [mx.cpu(i) for i in range(WORKERS * devices_per_worker)]
    net = build_network(config)
    initialise(net, contexts, config.env.seed, (1, 3, 64, 64))
    net.hybridize(static_alloc=True)
    spec = sampling_spec(config, net.spec)
    parts = [train_iterator(config, spec, rank, WORKERS) for rank in range(WORKERS)]
    per_epoch = batches_per_epoch(len(parts[0].dataset), config.data.batch_size, WORKERS, "discard")
    trainer = SegmentationTrainer(net, DeviceSetup(contexts, "local"), schedule_from_config(config.model, per_epoch),
                                  config.model, config.network.ignore_label, config.data.batch_size)
    try:
        for epoch in range(epochs):
            for part in parts:
                part.set_epoch(epoch)
            for batches in zip(*parts):
                data = np.concatenate([b.data[0].asnumpy() for b in batches])
                label = np.concatenate([b.label[0].asnumpy() for b in batches])
                trainer.step(data, label)
    finally:
        for part in parts:
            part.close()
    mx.nd.waitall()
    assert trainer.updates == epochs * per_epoch == 3 * epochs
    return trainer


def test_two_workers_match_one_process_on_the_same_global_batches(synthetic_root, tmp_path):
    model_dir = str(tmp_path / "dist")
    extra = [f"model.num_epochs={EPOCHS}", "data.use_val=False", "model.checkpoint_interval=1"]
    overrides = tiny_overrides(synthetic_root, model_dir, *extra)
    status, output = launch_with_retry([sys.executable, TRAIN_PY, TINY_CFG,
                                        *set_args(overrides + ["env.kv_store=dist_sync"])], WORKERS)
    assert status == 0, output
    digests = re.findall(r"\[worker \d\] done: .* parameters sha1 ([0-9a-f]{40})", output)
    assert len(digests) == WORKERS and len(set(digests)) == 1, output  # bit-identical workers
    assert "3 batches of 2 per epoch on 1 device(s) x 2 worker(s)" in output

    saved = read_params(f"{newest_prefix(model_dir)}-{EPOCHS:04d}.params")
    expected = reference_trainer(tiny_config(synthetic_root, str(tmp_path / "reference"), *extra)).parameter_arrays()
    assert len(saved) == len(expected)
    for key, value in saved.items():
        np.testing.assert_allclose(value.asnumpy(), expected[gluon_name(key.split(":", 1)[1])],
                                   rtol=1e-4, atol=1e-5, err_msg=key)


def test_each_worker_keeps_its_devices_batchnorm_statistics(synthetic_root, tmp_path):
    """BatchNorm learning, 2 workers x 2 CPU devices: at the epoch's end each worker averages
    its own devices' statistics (Module.get_params); nothing sends them through the kvstore,
    so worker 0 saves the mean of its two devices, not of all four. The learning rate is
    negligible, so that the statistics depend on the data alone (a BatchNorm network on
    single samples is chaotic in its parameters; the update itself is checked above)."""
    model_dir = str(tmp_path / "dist")
    extra = ["model.num_epochs=1", "data.use_val=False", "network.bn_use_global_stats=False",
             "network.bn_momentum=0.9", "model.lr=1e-9", "env.cpus=2"]
    status, output = launch_with_retry([sys.executable, TRAIN_PY, TINY_CFG,
                                        *set_args(tiny_overrides(synthetic_root, model_dir, *extra)
                                                  + ["env.kv_store=dist_sync"])], WORKERS)
    assert status == 0, output
    digests = re.findall(r"\[worker \d\] done: .* parameters sha1 ([0-9a-f]{40})", output)
    assert len(set(digests)) == WORKERS, output  # the workers' statistics differ
    saved = read_params(f"{newest_prefix(model_dir)}-0001.params")
    reference = reference_trainer(tiny_config(synthetic_root, str(tmp_path / "reference"), *extra), epochs=1,
                                  devices_per_worker=2)
    key = "conv1_1_3x3_s2/bn_running_var"
    devices = [value.asnumpy() for value in reference.net.collect_params()[key].list_data()]
    worker_zero, everyone = (devices[0] + devices[1]) / 2, sum(devices) / 4
    got = saved["aux:conv1_1_3x3_s2/bn_moving_var"].asnumpy()
    np.testing.assert_allclose(got, worker_zero, rtol=1e-4)
    assert np.abs(got - everyone).max() > 100 * np.abs(got - worker_zero).max()
    assert np.abs(got - devices[0]).max() > 100 * np.abs(got - worker_zero).max()


def test_launcher_kills_every_process_when_a_worker_fails(tmp_path):
    marker, asleep = str(tmp_path / "first"), str(tmp_path / "asleep")
    # The first worker to start exits with 3 once the other has started its minute of sleep
    # (waiting for it keeps the test valid on a loaded machine).
    worker = [sys.executable, "-c",
              f"import os, sys, time\n"
              f"try:\n    os.close(os.open({marker!r}, os.O_CREAT | os.O_EXCL))\n"
              f"except FileExistsError:\n"
              f"    print('sleeping', flush=True); open({asleep!r}, 'w').close(); time.sleep(60)\n"
              f"deadline = time.monotonic() + 20\n"
              f"while not os.path.exists({asleep!r}) and time.monotonic() < deadline:\n"
              f"    time.sleep(0.05)\n"
              f"print('failing', flush=True); sys.exit(3)\n"]
    start = time.monotonic()
    out = io.StringIO()
    port = next(p for p in PORTS if port_is_free(p))
    status = launch_local(worker, 2, 1, port=port, out=out)
    assert status == 3
    assert time.monotonic() - start < 30
    lines = out.getvalue().splitlines()
    assert any(re.fullmatch(r"\[worker \d\] failing", line) for line in lines)
    assert any(re.fullmatch(r"\[worker \d\] sleeping", line) for line in lines)

"""Optimizer state without pickle: same updates as MXNet's own save/load, hostile files refused."""
import os
import pickle

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from tusimple_duc.engine.optimizer_state import ND_LIST_MAGIC, load_optimizer_state, save_optimizer_state
from tusimple_duc.errors import CheckpointError

SGD = dict(learning_rate=0.1, momentum=0.9, wd=1e-3, clip_gradient=5.0, rescale_grad=1.0)


def _net(contexts):
    net = gluon.nn.HybridSequential(prefix="")
    net.add(gluon.nn.Conv2D(4, 3, in_channels=3, prefix="conv_"), gluon.nn.BatchNorm(in_channels=4, prefix="bn_"),
            gluon.nn.Dense(2, in_units=4 * 6 * 6, prefix="fc_"))
    net.initialize(mx.init.Constant(0.05), ctx=contexts)
    for index, param in enumerate(net.collect_params().values()):
        param.set_data(mx.nd.array(np.random.RandomState(index).uniform(-1, 1, param.shape)))
    return net


def _trainer(contexts, momentum=0.9):
    net = _net(contexts)
    kvstore = "local" if len(contexts) > 1 else None
    trainer = gluon.Trainer(net.collect_params(), "sgd", dict(SGD, momentum=momentum), kvstore=kvstore,
                            update_on_kvstore=False if kvstore else None)
    return net, trainer


def _step(net, trainer, contexts, seed):
    data = np.random.RandomState(seed).uniform(-1, 1, (2 * len(contexts), 3, 8, 8)).astype(np.float32)
    with autograd.record():
        losses = [net(mx.nd.array(part, ctx=ctx)).square().sum()
                  for part, ctx in zip(np.split(data, len(contexts)), contexts)]
    autograd.backward(losses)
    trainer.step(2)


def _weights(net):
    return {name: p.data().asnumpy() for name, p in net.collect_params().items()}


@pytest.mark.parametrize("contexts", [[mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]], ids=["1 device", "2 devices"])
def test_resumed_updates_equal_mxnets_own_save_and_load(tmp_path, contexts):
    original, trainer = _trainer(contexts)
    for seed in range(3):
        _step(original, trainer, contexts, seed)
    path = str(tmp_path / "run-0003.states")
    saved = save_optimizer_state(trainer, path)
    trainer.save_states(str(tmp_path / "gluon.states"))  # MXNet's pickled format, the reference
    with open(path, "rb") as handle:
        assert handle.read(8) == ND_LIST_MAGIC
    assert set(mx.nd.load(path)) == set(original.collect_params().keys()) - {"bn_running_mean", "bn_running_var"}
    assert saved["num_update"] == 3

    ours, our_trainer = _trainer(contexts)
    reference, reference_trainer = _trainer(contexts)
    for net in (ours, reference):
        for name, param in net.collect_params().items():
            param.set_data(original.collect_params()[name].data())
    load_optimizer_state(our_trainer, path, saved)
    reference_trainer.load_states(str(tmp_path / "gluon.states"))
    assert our_trainer.optimizer.num_update == reference_trainer.optimizer.num_update == 3
    for seed in (3, 4):
        _step(ours, our_trainer, contexts, seed)
        _step(reference, reference_trainer, contexts, seed)
        _step(original, trainer, contexts, seed)
    expected = _weights(original)
    for weights in (_weights(ours), _weights(reference)):
        for name, value in expected.items():
            np.testing.assert_array_equal(weights[name], value, err_msg=name)
    for ctx_index, ctx in enumerate(contexts):  # every device updated its weights with its own state copy
        for name, param in ours.collect_params().items():
            if param.grad_req == "null":  # BatchNorm statistics: each device's own batch slice
                continue
            np.testing.assert_array_equal(param.data(ctx).asnumpy(), expected[name], err_msg=f"{name} {ctx}")
    assert ctx_index == len(contexts) - 1


def test_no_momentum_state_round_trips(tmp_path):
    net, trainer = _trainer([mx.cpu()], momentum=0.0)
    _step(net, trainer, [mx.cpu()], 0)
    saved = save_optimizer_state(trainer, str(tmp_path / "s.states"))
    assert set(saved["layout"].values()) == {"none"}
    _, fresh = _trainer([mx.cpu()], momentum=0.0)
    load_optimizer_state(fresh, str(tmp_path / "s.states"), saved)
    assert all(state is None for state in fresh._updaters[0].states.values())


class _WritesMarker:
    """A pickle payload: unpickling it creates the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_pickled_payload_never_runs_without_trust(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "run-0001.states"
    path.write_bytes(pickle.dumps(_WritesMarker(str(marker))))
    _, trainer = _trainer([mx.cpu()])
    for saved in (None, {"format": "nd-v1", "num_update": 1, "update_counts": {}, "layout": {}}):
        with pytest.raises(CheckpointError) as err:
            load_optimizer_state(trainer, str(path), saved)
        assert str(err.value) == (f"{path}: optimizer state in the pickled format, which runs code when read; "
                                  f"pass --trust-pickled-states only if you trust this file")
    assert not marker.exists()


def test_trusted_pickled_file_of_gluon_is_read(tmp_path):
    net, trainer = _trainer([mx.cpu()])
    _step(net, trainer, [mx.cpu()], 0)
    trainer.save_states(str(tmp_path / "old.states"))
    _, fresh = _trainer([mx.cpu()])
    load_optimizer_state(fresh, str(tmp_path / "old.states"), None, trust_pickle=True)
    for index, state in trainer._updaters[0].states.items():
        np.testing.assert_array_equal(fresh._updaters[0].states[index].asnumpy(), state.asnumpy())


def test_truncated_files_are_one_line_errors(tmp_path):
    net, trainer = _trainer([mx.cpu()])
    _step(net, trainer, [mx.cpu()], 0)
    ours, theirs = str(tmp_path / "new.states"), str(tmp_path / "old.states")
    saved = save_optimizer_state(trainer, ours)
    trainer.save_states(theirs)
    for path in (ours, theirs):
        size = os.path.getsize(path)
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)
    _, fresh = _trainer([mx.cpu()])
    with pytest.raises(CheckpointError, match=r"new\.states: optimizer state truncated or corrupt") as err:
        load_optimizer_state(fresh, ours, saved)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match=r"old\.states: pickled optimizer state truncated or corrupt") as err:
        load_optimizer_state(fresh, theirs, None, trust_pickle=True)
    assert "\n" not in str(err.value)
    (tmp_path / "junk.states").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not an optimizer state file"):
        load_optimizer_state(fresh, str(tmp_path / "junk.states"), saved)


def test_state_of_another_network_is_refused(tmp_path):
    net, trainer = _trainer([mx.cpu()])
    _step(net, trainer, [mx.cpu()], 0)
    saved = save_optimizer_state(trainer, str(tmp_path / "s.states"))
    saved["layout"]["fc_weight"] = "array"
    arrays = mx.nd.load(str(tmp_path / "s.states"))
    arrays["fc_weight"] = mx.nd.zeros((3, 3))
    mx.nd.save(str(tmp_path / "s.states"), arrays)
    _, fresh = _trainer([mx.cpu()])
    with pytest.raises(CheckpointError, match=r"optimizer state fc_weight has shape \(3, 3\), parameter fc_weight"):
        load_optimizer_state(fresh, str(tmp_path / "s.states"), saved)

"""Checkpoints in the released format: load, save, strictness and one clear error per problem."""
import json
import logging
import os

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest

import released_manifest
from io_helpers import RELEASED, randomize, released_arrays
from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.checkpoint import load_checkpoint, load_params_file, save_checkpoint
from tusimple_duc.io.matching import CheckpointMismatchError
from tusimple_duc.models.presets import get_model

TINY = "tiny_duc_hdc"


def gluon_name(key: str) -> str:
    """The released file's key -> the Gluon parameter name (written out here, independently)."""
    kind, name = key.split(":", 1)
    if kind == "aux":
        return name.replace("/bn_moving_mean", "/bn_running_mean").replace("/bn_moving_var", "/bn_running_var")
    return name


def values(net):
    return {name: p.data().asnumpy() for name, p in net.collect_params().items()}


def tiny_net(seed=0, **overrides):
    net = get_model(TINY, **overrides)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    randomize(net, seed)
    return net


@pytest.fixture(scope="module")
def released_file(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("released") / "ResNet_DUC_HDC_CityScapes")
    arrays = released_arrays(seed=0)
    mx.nd.save(prefix + "-0020.params", arrays)
    return prefix, arrays


@pytest.fixture
def tiny_checkpoint(tmp_path):
    net = tiny_net(seed=1)
    prefix = str(tmp_path / "tiny")
    save_checkpoint(net, prefix, 3)
    return prefix, net


def test_released_checkpoint_loads_every_tensor_into_the_released_preset(released_file):
    prefix, arrays = released_file
    net = get_model(RELEASED)
    report = load_checkpoint(net, prefix, 20)
    assert (report.comparison.missing, report.comparison.unexpected, report.comparison.mismatched) == ((), (), ())
    assert report.symbol_checked is None and report.file_format == "checkpoint"
    params = net.collect_params()
    assert len(arrays) == 326 + 212 == len(list(params.keys())) == len(report.loaded)
    for key, value in arrays.items():
        assert np.array_equal(params[gluon_name(key)].data().asnumpy(), value.asnumpy()), key


def test_save_writes_exactly_the_released_names_and_reloads_bitwise(released_file, tmp_path):
    prefix, arrays = released_file
    net = get_model(RELEASED)
    load_checkpoint(net, prefix, 20)
    sym_file, params_file = save_checkpoint(net, str(tmp_path / "copy"), 21)
    assert params_file == str(tmp_path / "copy-0021.params") and sym_file == str(tmp_path / "copy-symbol.json")
    assert sorted(os.listdir(tmp_path)) == ["copy-0021.params", "copy-symbol.json"]  # no temp files left
    saved = mx.nd.load(params_file)
    expected_keys = {"arg:" + k for k in released_manifest.ARG} | {"aux:" + k for k in released_manifest.AUX}
    assert set(saved) == expected_keys
    for key, value in arrays.items():
        assert saved[key].dtype == np.float32
        assert np.array_equal(saved[key].asnumpy(), value.asnumpy()), key
    again = get_model(RELEASED)
    assert load_checkpoint(again, str(tmp_path / "copy"), 21).symbol_checked is True
    for name, value in values(again).items():
        assert np.array_equal(value, net.collect_params()[name].data().asnumpy()), name


def test_tiny_save_load_is_bitwise_into_a_fresh_and_an_initialised_net(tiny_checkpoint):
    prefix, net = tiny_checkpoint
    fresh = get_model(TINY)  # not initialised
    load_checkpoint(fresh, prefix, 3)
    other = tiny_net(seed=2)
    load_checkpoint(other, prefix, 3)
    for name, value in values(net).items():
        assert np.array_equal(fresh.collect_params()[name].data().asnumpy(), value), name
        assert np.array_equal(other.collect_params()[name].data().asnumpy(), value), name
    x = mx.nd.random.uniform(-50, 50, (1, 3, 32, 32))
    assert np.array_equal(fresh(x).asnumpy(), net(x).asnumpy())


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_params_file_is_one_clear_error(tiny_checkpoint, keep):
    prefix, _ = tiny_checkpoint
    path = prefix + "-0003.params"
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(get_model(TINY), prefix, 3)
    message = str(err.value)
    assert message.startswith(path + ": not a readable MXNet params file, truncated or corrupt")
    assert "\n" not in message


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 this is a zip archive, not params" * 4])
def test_corrupt_or_empty_params_file_is_one_clear_error(tmp_path, content):
    path = tmp_path / "bad-0001.params"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_params_file(get_model(TINY), str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_params_file_lists_the_epochs_found(tiny_checkpoint):
    prefix, _ = tiny_checkpoint
    save_checkpoint(tiny_net(), prefix, 12)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(get_model(TINY), prefix, 7)
    assert str(err.value) == f"{prefix}-0007.params: no such checkpoint (epochs found: 3, 12)"
    with pytest.raises(CheckpointError, match="no such params file"):
        load_params_file(get_model(TINY), prefix + "-nothing.params")
    with pytest.raises(CheckpointError, match=r"no nowhere-NNNN\.params in"):
        load_checkpoint(get_model(TINY), os.path.join(os.path.dirname(prefix), "nowhere"), 1)


def test_other_number_of_classes_is_one_error_listing_the_head(tiny_checkpoint, caplog):
    prefix, saved = tiny_checkpoint
    net = tiny_net(seed=5, num_classes=3)
    with pytest.raises(CheckpointMismatchError) as err:
        load_params_file(net, prefix + "-0003.params")
    head = {f"arg:fc1_cityscapes_c{i}_{leaf}" for i in range(4) for leaf in ("weight", "bias")}
    assert {name for name, _, _ in err.value.mismatched} == head
    assert err.value.missing == () and err.value.unexpected == ()
    message = str(err.value)
    assert "\n" not in message and message.startswith(prefix + "-0003.params: does not match the network: ")
    assert ("8 with another shape (arg:fc1_cityscapes_c0_weight: file (304, 256, 3, 3) vs network (48, 256, 3, 3), "
            "arg:fc1_cityscapes_c0_bias: file (304,) vs network (48,)") in message
    before = values(net)
    with caplog.at_level(logging.WARNING):
        report = load_params_file(net, prefix + "-0003.params", allow_missing=True)
    assert "8 with another shape" in caplog.text
    assert len(report.loaded) == len(before) - 8 == len(list(net.collect_params().keys())) - 8
    for name, value in values(net).items():
        expected = before[name] if name.startswith("fc1_") else saved.collect_params()[name].data().asnumpy()
        assert np.array_equal(value, expected), name


def test_missing_and_unexpected_arrays_are_errors_unless_allowed(tmp_path):
    net = tiny_net(seed=1)
    save_checkpoint(net, str(tmp_path / "t"), 1)
    arrays = mx.nd.load(str(tmp_path / "t-0001.params"))
    del arrays["aux:conv2_1_3x3/bn_moving_var"]
    arrays["arg:conv9_1_3x3_weight"] = mx.nd.ones((2, 2))
    path = str(tmp_path / "edited.params")
    mx.nd.save(path, arrays)
    with pytest.raises(CheckpointMismatchError) as err:
        load_params_file(tiny_net(seed=2), path)
    assert str(err.value) == (f"{path}: does not match the network: 1 missing (aux:conv2_1_3x3/bn_moving_var); "
                              f"1 unexpected (arg:conv9_1_3x3_weight)")
    with pytest.raises(CheckpointMismatchError, match="1 unexpected"):
        load_params_file(tiny_net(seed=2), path, allow_missing=True)
    with pytest.raises(CheckpointMismatchError, match="1 missing"):
        load_params_file(tiny_net(seed=2), path, allow_extra=True)
    target = tiny_net(seed=2)
    kept = target.collect_params()["conv2_1_3x3/bn_running_var"].data().asnumpy()
    report = load_params_file(target, path, strict=False)
    assert report.comparison.missing == ("aux:conv2_1_3x3/bn_moving_var",)
    assert np.array_equal(target.collect_params()["conv2_1_3x3/bn_running_var"].data().asnumpy(), kept)
    assert np.array_equal(target.collect_params()["conv2_1_3x3_weight"].data().asnumpy(),
                          arrays["arg:conv2_1_3x3_weight"].asnumpy())


def test_input_arrays_saved_with_the_weights_are_ignored(tmp_path):
    net = tiny_net(seed=1)
    save_checkpoint(net, str(tmp_path / "t"), 1)
    arrays = mx.nd.load(str(tmp_path / "t-0001.params"))
    arrays["arg:data"] = mx.nd.zeros((1, 3, 32, 32))
    arrays["arg:seg_loss_label"] = mx.nd.zeros((1, 256))
    mx.nd.save(str(tmp_path / "t-0001.params"), arrays)
    assert len(load_checkpoint(tiny_net(seed=3), str(tmp_path / "t"), 1).loaded) == len(arrays) - 2


def test_symbol_of_another_network_is_one_clear_error(tiny_checkpoint, tmp_path):
    prefix, _ = tiny_checkpoint
    save_checkpoint(tiny_net(num_classes=3), str(tmp_path / "other"), 1)
    os.replace(str(tmp_path / "other-symbol.json"), prefix + "-symbol.json")
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(get_model(TINY), prefix, 3)
    message = str(err.value)
    assert message.startswith(prefix + "-symbol.json: symbol describes another network: 8 with another shape")
    assert "\n" not in message


def test_symbol_json_that_mxnet_rejects_warns_and_loads_from_the_params(tiny_checkpoint, caplog):
    prefix, saved = tiny_checkpoint
    graph = json.load(open(prefix + "-symbol.json"))
    for node in graph["nodes"]:
        if node["op"] == "BatchNorm":  # what the MXNet 0.11 fork that wrote the released JSON added
            node["attrs"]["fix_linear_trans"] = "False"
    json.dump(graph, open(prefix + "-symbol.json", "w"))
    net = get_model(TINY)
    with caplog.at_level(logging.WARNING):
        report = load_checkpoint(net, prefix, 3)
    assert report.symbol_checked is False
    assert f"{prefix}-symbol.json: symbol JSON is rejected by MXNet" in caplog.text
    assert "fix_linear_trans" in caplog.text
    for name, value in values(saved).items():
        assert np.array_equal(net.collect_params()[name].data().asnumpy(), value), name


def test_symbol_file_that_is_not_json_warns_and_loads(tiny_checkpoint, caplog):
    prefix, _ = tiny_checkpoint
    with open(prefix + "-symbol.json", "w") as handle:
        handle.write('{"nodes": [\n  {"op": "null",\n')
    with caplog.at_level(logging.WARNING):
        report = load_checkpoint(get_model(TINY), prefix, 3)
    assert report.symbol_checked is False and len(report.loaded) > 0
    assert f"{prefix}-symbol.json: symbol JSON is not valid JSON (line 3" in caplog.text


def test_plain_gluon_parameter_files_load(tmp_path):
    net = tiny_net(seed=4)
    net.save_parameters(str(tmp_path / "structural.params"))
    net.collect_params().save(str(tmp_path / "names.params"))
    for file_name, file_format in (("structural.params", "gluon"), ("names.params", "gluon-names")):
        target = tiny_net(seed=6)
        report = load_params_file(target, str(tmp_path / file_name))
        assert report.file_format == file_format
        for name, value in values(net).items():
            assert np.array_equal(target.collect_params()[name].data().asnumpy(), value), (file_name, name)

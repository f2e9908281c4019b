"""Hostile or broken checkpoint inputs: non-finite weights and optimizer states, symbol JSON
beyond the size and depth limits, an export into an earlier export."""
import os

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import pytest

from io_helpers import load_tool, randomize
from tusimple_duc.errors import CheckpointError, OutputError
from tusimple_duc.io.checkpoint import load_checkpoint, load_params_file, save_checkpoint
from tusimple_duc.io.export import export_model
from tusimple_duc.io.symbol_spec import (MAX_SYMBOL_JSON_BYTES, MAX_SYMBOL_JSON_DEPTH, json_depth,
                                         spec_from_symbol_file)
from tusimple_duc.models.presets import get_model

TINY = "tiny_duc_hdc"


def _tiny_net(seed: int = 7):
    net = get_model(TINY)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    randomize(net, seed=seed)
    return net


@pytest.fixture
def tiny_checkpoint(tmp_path):
    prefix = str(tmp_path / "tiny")
    save_checkpoint(_tiny_net(), prefix, 3)
    return prefix


def _poison(path: str, index: int, value: float) -> str:
    """Set one value of the ``index``-th array (file order) of a params file; returns its key."""
    arrays = mx.nd.load(path)
    key = list(arrays)[index]
    arrays[key].reshape(-1)[5] = value
    mx.nd.save(path, arrays)
    return key


def test_a_non_finite_array_is_refused_naming_the_file_and_the_first_bad_array(tiny_checkpoint):
    path = tiny_checkpoint + "-0003.params"
    first = _poison(path, 4, float("nan"))
    _poison(path, 9, float("-inf"))
    size = mx.nd.load(path)[first].size
    message = f"{path}: array {first} holds 1 NaN and 0 infinite of {size} values"
    for load in (lambda net: load_checkpoint(net, tiny_checkpoint, 3),                       # test.py, --resume
                 lambda net: load_checkpoint(net, tiny_checkpoint, 3, allow_missing=True),   # fine-tuning
                 lambda net: load_params_file(net, path)):
        with pytest.raises(CheckpointError) as error:
            load(_tiny_net())
        assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_export_refuses_non_finite_weights_and_writes_nothing(tiny_checkpoint, tmp_path):
    key = _poison(tiny_checkpoint + "-0003.params", 0, float("inf"))
    with pytest.raises(CheckpointError, match=f"tiny-0003.params: array {key} holds 0 NaN and 1 infinite"):
        export_model(tiny_checkpoint, 3, str(tmp_path / "out"), TINY)
    assert not any(name.startswith("out") for name in os.listdir(tmp_path))


def test_a_non_finite_momentum_is_refused_on_resume(tmp_path):
    from tusimple_duc.engine.optimizer_state import load_optimizer_state, save_optimizer_state

    net = _tiny_net()
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    with mx.autograd.record():
        loss = net(mx.nd.ones((1, 3, 32, 32))).sum()
    loss.backward()
    trainer.step(1)
    path = str(tmp_path / "tiny-0001.states")
    saved = save_optimizer_state(trainer, path)
    key = _poison(path, 2, float("nan"))
    with pytest.raises(CheckpointError, match=f"tiny-0001.states: array {key} holds 1 NaN"):
        load_optimizer_state(trainer, path, saved)


def test_json_depth_counts_brackets_outside_strings_only():
    assert json_depth('{"nodes": [{"name": "[[[{{", "inputs": [[0, 0, 0]]}]}') == 5
    assert json_depth('"\\"[[["') == 0
    assert json_depth("[" * 40 + "]" * 40) == 40


def test_a_deeply_nested_symbol_json_is_one_line_everywhere(tiny_checkpoint, tmp_path):
    symbol = tiny_checkpoint + "-symbol.json"
    with open(symbol, "w") as handle:
        handle.write("[" * 200000 + "]" * 200000)
    message = (f"{symbol}: symbol JSON nested 200000 levels deep, more than the limit of "
               f"{MAX_SYMBOL_JSON_DEPTH}; not a network's symbol file")
    for read in (lambda: spec_from_symbol_file(symbol),                                   # test.py, fine-tuning
                 lambda: load_checkpoint(_tiny_net(), tiny_checkpoint, 3),                  # every load
                 lambda: export_model(tiny_checkpoint, 3, str(tmp_path / "out"))):          # export
        with pytest.raises(CheckpointError) as error:
            read()
        assert str(error.value) == message


def test_a_symbol_json_over_the_size_limit_is_refused_unread(tiny_checkpoint):
    symbol = tiny_checkpoint + "-symbol.json"
    with open(symbol, "wb") as handle:
        handle.truncate(MAX_SYMBOL_JSON_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(CheckpointError, match=f"symbol JSON of {MAX_SYMBOL_JSON_BYTES + 1} bytes is larger than "
                                              f"the limit of {MAX_SYMBOL_JSON_BYTES} bytes"):
        spec_from_symbol_file(symbol)
    with pytest.raises(CheckpointError, match="is larger than the limit"):
        load_checkpoint(_tiny_net(), tiny_checkpoint, 3)


def test_export_into_an_earlier_export_is_refused_unless_overwrite(tiny_checkpoint, tmp_path, capsys):
    out = str(tmp_path / "out")
    export_model(tiny_checkpoint, 3, out, TINY)
    earlier = open(out + "-0000.params", "rb").read()
    with pytest.raises(OutputError, match=f"^{out}-symbol.json: exists \\(an earlier export\\); give --overwrite"):
        export_model(tiny_checkpoint, 3, out, TINY)
    os.remove(out + "-symbol.json")
    with pytest.raises(OutputError, match=f"^{out}-0000.params: exists"):
        export_model(tiny_checkpoint, 3, out, TINY)
    assert open(out + "-0000.params", "rb").read() == earlier
    tool = load_tool("export_model")
    assert tool.run_cli(tool.main, ["--prefix", tiny_checkpoint, "--epoch", "3", "--out", out, "--preset", TINY]) == 2
    assert capsys.readouterr().err.startswith(f"error: {out}-0000.params: exists")
    save_checkpoint(_tiny_net(seed=8), tiny_checkpoint, 3)
    assert tool.run_cli(tool.main, ["--prefix", tiny_checkpoint, "--epoch", "3", "--out", out, "--preset", TINY,
                                    "--overwrite"]) == 0
    assert os.path.exists(out + "-symbol.json") and open(out + "-0000.params", "rb").read() != earlier

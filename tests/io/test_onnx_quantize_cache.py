"""The quantized-model cache: a hit reads the file, another model or setting misses, a corrupt file is quantized again."""
import logging

import numpy as np
import onnx
from onnx import numpy_helper

from tusimple_duc.io.onnx_quantize import quantize_qdq
from tusimple_duc.io.onnx_quantize_cache import cache_file, cached_quantized, quantization_key
from test_onnx_quantize import _calibration, _graph_model


def _quantizer(model, calibration, calls):
    def quantize():
        calls.append(1)
        return quantize_qdq(model, calibration)
    return quantize


def test_hit_reads_the_file_miss_quantizes(tmp_path):
    model, calibration, calls = _graph_model(), _calibration(), []
    key = quantization_key(model.SerializeToString(), (), calibration, (512, 1024))
    path = cache_file(str(tmp_path / "net-0006"), key)
    assert path == str(tmp_path / f"net-0006.int8-{key}.onnx") and len(key) == 16
    first = cached_quantized(path, _quantizer(model, calibration, calls))
    second = cached_quantized(path, _quantizer(model, calibration, calls))
    assert calls == [1]                                   # the second call read the file
    assert second.SerializeToString() == first.SerializeToString()
    assert [p.name for p in tmp_path.iterdir()] == [f"net-0006.int8-{key}.onnx"]   # no temporary left


def test_key_changes_with_the_model_the_settings_and_the_calibration():
    model, calibration = _graph_model(), _calibration()
    base = quantization_key(model.SerializeToString(), (), calibration, (512, 1024))
    other = onnx.ModelProto()
    other.CopyFrom(model)
    weight = other.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 2, weight.name))
    changed = [quantization_key(other.SerializeToString(), (), calibration, (512, 1024)),
               quantization_key(model.SerializeToString(), ("b_weight",), calibration, (512, 1024)),
               quantization_key(model.SerializeToString(), (), calibration[:1], (512, 1024)),
               quantization_key(model.SerializeToString(), (), calibration + 1, (512, 1024)),
               quantization_key(model.SerializeToString(), (), calibration, (256, 512))]
    assert len({base, *changed}) == 6
    assert quantization_key(model.SerializeToString(), (), calibration.copy(), (512, 1024)) == base


def test_corrupt_cache_file_is_one_line_and_quantized_again(tmp_path, caplog):
    model, calibration, calls = _graph_model(), _calibration(), []
    path = str(tmp_path / "net-0001.int8-0123456789abcdef.onnx")
    with open(path, "wb") as f:
        f.write(b"\x08\x07not a model")
    with caplog.at_level(logging.WARNING, logger="tusimple_duc.io.onnx_quantize_cache"):
        rebuilt = cached_quantized(path, _quantizer(model, calibration, calls))
    assert calls == [1]
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert path in record.getMessage() and "quantizing again" in record.getMessage()
    assert "\n" not in record.getMessage()
    assert onnx.load(path).SerializeToString() == rebuilt.SerializeToString()   # replaced by the good model


def test_unwritable_folder_returns_the_model_with_one_line(tmp_path, caplog):
    model, calibration, calls = _graph_model(), _calibration(), []
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="tusimple_duc.io.onnx_quantize_cache"):
        result = cached_quantized(str(blocker / "net-0001.int8-0.onnx"), _quantizer(model, calibration, calls))
    assert calls == [1] and len(result.graph.node) == len(quantize_qdq(model, calibration).graph.node)
    assert any("not kept" in r.getMessage() for r in caplog.records)

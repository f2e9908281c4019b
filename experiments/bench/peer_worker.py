"""Peer worker of the benchmark: bare OpenVINO (and NNCF) on the project's ONNX, in ANOTHER interpreter.

The peers are what a deployment user runs without this project: the ONNX export read by the
newest OpenVINO, optionally quantized by NNCF's ``nncf.quantize`` with its defaults. They do not
install next to MXNet's numpy pin, so they run in their own Python (``tools/bench.py
--peer-python PATH``). This script therefore imports neither ``mxnet`` nor ``tusimple_duc`` nor
the ``experiments`` package: only the standard library, NumPy, OpenVINO, NNCF and its sibling
``protocol.py`` (the script's folder is first on ``sys.path``)::

    PEER_PYTHON peer_worker.py --probe          # one reply: versions of what this interpreter has
    PEER_PYTHON peer_worker.py '<config JSON>'  # a worker speaking protocol.py's commands

The config (:func:`experiments.bench.peers.peer_config` writes it): ``variant`` (its label),
``onnx`` (the model file), ``input`` (``.npy`` (N, 3, H, W) float32), ``hint`` (OpenVINO's
``INFERENCE_PRECISION_HINT``, ``f32`` / ``bf16``, or null: the plugin's default), ``quantize``
(null, or an NNCF preset: ``performance`` / ``mixed``) and ``calibration`` (``.npy`` (K, 3, H, W)
float32, fed one image at a time to ``nncf.quantize``). The saved probabilities are the model's
first output as it is (the DUC export: ``seg_prob`` (N, L, r*r*h*w)); the suite rearranges them.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any, Dict, Optional

import numpy as np

from protocol import reply, work   # the sibling module: this script's folder is sys.path[0]

PROBED_MODULES = ("openvino", "nncf", "numpy")


def module_versions() -> Dict[str, Optional[str]]:
    """``__version__`` of each of :data:`PROBED_MODULES`, None where it does not import."""
    versions: Dict[str, Optional[str]] = {}
    for name in PROBED_MODULES:
        try:
            versions[name] = str(getattr(importlib.import_module(name), "__version__", "unknown"))
        except ImportError:
            versions[name] = None
    return versions


class PeerVariant:
    """The compiled OpenVINO model of one config; ``run()`` calls it on the loaded input."""

    def __init__(self, config: Dict[str, Any]) -> None:
        import openvino

        self.x = np.ascontiguousarray(np.load(config["input"]), dtype=np.float32)
        core = openvino.Core()
        model = core.read_model(config["onnx"])
        model.reshape({model.inputs[0].get_any_name(): list(self.x.shape)})
        if config.get("quantize"):
            model = quantized(model, config["quantize"], np.load(config["calibration"]))
        properties = {"INFERENCE_PRECISION_HINT": config["hint"]} if config.get("hint") else {}
        self.compiled = core.compile_model(model, "CPU", properties)
        self.last: Optional[np.ndarray] = None

    def ready_fields(self) -> Dict[str, Any]:
        """What the suite records of this build: versions, the precision and threads OpenVINO chose."""
        return {"versions": module_versions(),
                "inference_precision": self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
                "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                            "INFERENCE_NUM_THREADS": int(self.compiled.get_property("INFERENCE_NUM_THREADS"))}}

    def run(self) -> None:
        self.last = None   # freed first: the peak memory of one inference
        self.last = self.compiled(self.x)[0]

    def probabilities(self) -> Optional[np.ndarray]:
        """The last run's first output, as the model gives it."""
        return self.last

    def probabilities_of(self, x: np.ndarray) -> np.ndarray:
        return self.compiled(np.ascontiguousarray(x, dtype=np.float32))[0]


def quantized(model: Any, preset: str, calibration: np.ndarray) -> Any:
    """``nncf.quantize`` of the OpenVINO model with its defaults but ``preset``, calibrated on the
    (K, 3, H, W) images one at a time."""
    import nncf

    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    if preset not in presets:
        raise ValueError(f"quantize = {preset!r}: unknown NNCF preset (known: {', '.join(presets)})")
    items = [np.ascontiguousarray(calibration[i:i + 1], dtype=np.float32) for i in range(len(calibration))]
    return nncf.quantize(model, nncf.Dataset(items), preset=presets[preset])


def main(argv) -> int:
    if argv[1:] == ["--probe"]:
        reply({"versions": module_versions(), "python_version": sys.version.split()[0], "executable": sys.executable,
               "project_modules_loaded": sorted(m for m in ("mxnet", "tusimple_duc") if sys.modules.get(m))})
        return 0

    def build():
        variant = PeerVariant(json.loads(argv[1]))
        return variant, variant.ready_fields()

    return work(build)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

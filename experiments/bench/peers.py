"""Peer variants of the benchmark: bare OpenVINO and OpenVINO + NNCF int8 run by another interpreter.

``tools/bench.py --peer-python PATH`` names a Python with the newest ``openvino`` and ``nncf``
(they do not install next to MXNet's numpy pin; recipe in docs/PERFORMANCE.md). Each peer variant
runs ``PATH experiments/bench/peer_worker.py '<config>'`` in its own process, on the suite's ONNX
export of the same weights and the same input, interleaved with the project's variants and checked
against FastForward fp32 before timing like them:

========================  ========================================================================
``peer-openvino-fp32``    the ONNX read, reshaped, compiled for the CPU with the hint f32
``peer-openvino-bf16``    the same with the hint bf16 (f32 on a CPU without bf16 instructions)
``peer-openvino-default`` the same with no hint: the plugin's own default precision
``peer-nncf-int8``        ``nncf.quantize`` (its defaults, preset performance) of the OpenVINO
                          model on the suite's calibration images, compiled with no hint
``peer-nncf-int8-mixed``  the same with NNCF's mixed preset (asymmetric activations)
========================  ========================================================================

What the peer interpreter offers is asked once (``peer_worker.py --probe``); a variant it cannot
run (no ``--peer-python``, ``nncf`` not importable there, ...) is reported unavailable with the
reason, as the project's own variants are.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional

from experiments.bench.process import BenchError
from experiments.bench.protocol import REPLY_PREFIX

PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_worker.py")
PROBE_TIMEOUT_S = 120


@dataclass(frozen=True)
class PeerSettings:
    """hint: OpenVINO's ``INFERENCE_PRECISION_HINT`` (None: the plugin's default); quantize: None
    or an NNCF preset (``performance``, ``mixed``)."""

    hint: Optional[str]
    quantize: Optional[str] = None

    def modules(self) -> List[str]:
        """The modules the peer interpreter needs for this variant."""
        return ["openvino", "nncf"] if self.quantize else ["openvino"]


PEER_VARIANTS: Dict[str, PeerSettings] = {
    "peer-openvino-fp32": PeerSettings("f32"),
    "peer-openvino-bf16": PeerSettings("bf16"),
    "peer-openvino-default": PeerSettings(None),
    "peer-nncf-int8": PeerSettings(None, "performance"),
    "peer-nncf-int8-mixed": PeerSettings(None, "mixed"),
}


def is_peer(variant: str) -> bool:
    return variant in PEER_VARIANTS


def probe(peer_python: str) -> Dict[str, object]:
    """``peer_worker.py --probe`` run by ``peer_python``: its versions (None: not importable).

    Raises BenchError naming ``peer_python`` when it does not run or does not answer."""
    try:
        done = subprocess.run([peer_python, PEER_SCRIPT, "--probe"], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, check=False)
    except OSError as err:
        raise BenchError(f"--peer-python {peer_python}: cannot run it: {err}") from None
    replies = [line[len(REPLY_PREFIX):] for line in done.stdout.splitlines() if line.startswith(REPLY_PREFIX)]
    if done.returncode != 0 or not replies:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"--peer-python {peer_python}: the probe failed (status {done.returncode}): {last}")
    return json.loads(replies[-1])


def unavailable_reason(variant: str, peer_python: Optional[str], probed: Optional[Dict[str, object]]) -> Optional[str]:
    """Why the peer ``variant`` cannot run (None when it can)."""
    if peer_python is None:
        return "needs --peer-python PATH (an interpreter with openvino and nncf)"
    missing = [m for m in PEER_VARIANTS[variant].modules() if not (probed or {}).get("versions", {}).get(m)]
    if missing:
        return f"{' and '.join(missing)} unavailable in this interpreter ({peer_python})"
    return None


def peer_command(peer_python: str, variant: str, onnx: str, input_path: str,
                 calibration: Optional[str]) -> List[str]:
    """The command line of the peer worker running ``variant`` (see ``peer_worker.py``)."""
    settings = PEER_VARIANTS[variant]
    config = {"variant": variant, "onnx": onnx, "input": input_path, "hint": settings.hint,
              "quantize": settings.quantize, "calibration": calibration if settings.quantize else None}
    return [peer_python, PEER_SCRIPT, json.dumps(config)]

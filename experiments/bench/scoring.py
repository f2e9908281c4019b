"""Ground truth, mIoU and the issue's targets for the benchmark."""
from __future__ import annotations

from typing import Dict, Sequence

import cv2
import numpy as np

from tusimple_duc.data.labels import CITYSCAPES_ID_TO_TRAINID
from tusimple_duc.evaluation.confusion import ConfusionAccumulator

IGNORE = 255


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file."""
    return np.ascontiguousarray(cv2.imread(path, cv2.IMREAD_COLOR)[:, :, ::-1])


def train_id_map(label_ids_path: str, stride: int) -> np.ndarray:
    """(H/s, W/s) uint8 trainIds of a ``labelIds`` PNG (nearest-neighbour downsampling)."""
    ids = cv2.imread(label_ids_path, cv2.IMREAD_GRAYSCALE)
    train_ids = CITYSCAPES_ID_TO_TRAINID[ids]
    return cv2.resize(train_ids, (ids.shape[1] // stride, ids.shape[0] // stride),
                      interpolation=cv2.INTER_NEAREST)


def top_two_margin(probabilities: np.ndarray) -> np.ndarray:
    """(L, H, W) class probabilities -> (H, W) top-1 minus top-2 probability."""
    top_two = np.partition(probabilities, -2, axis=0)[-2:]
    return top_two[1] - top_two[0]


def mean_iou(predictions: Sequence[np.ndarray], labels: Sequence[np.ndarray], num_classes: int) -> float:
    """mIoU over classes present in ground truth or prediction, summed over images."""
    confusion = ConfusionAccumulator(num_classes, IGNORE)
    for prediction, label in zip(predictions, labels):
        confusion.add(prediction, label)
    return confusion.mean_iou()


#: issue 17's deployment targets
PIPELINE_OVERHEAD_MAX = 1.05
OPENVINO_SPEEDUP_MIN = 1.1
BEST_SPEEDUP_MIN = 2.5
AGREEMENT_MIN = 0.99


def backend_targets(tag: str, variants: Dict[str, Dict[str, object]], weights: str) -> Dict[str, bool]:
    """The deployment targets at one shape, for the variants measured: test.py with OpenVINO
    fp32 within 5% of the same image by hand around bare OpenVINO, and >= 1.1x the predictor
    with FastForward fp32; the fastest backend variant with >= 99% argmax agreement (on the
    benchmark's ``weights``) >= 2.5x FastForward fp32."""
    out: Dict[str, bool] = {}
    if "predict-openvino" in variants and "bare-openvino" in variants:
        out[f"{tag} test.py openvino fp32 within 5% of bare OpenVINO (pre/post included)"] = (
            variants["predict-openvino"]["median_s"] <= PIPELINE_OVERHEAD_MAX * variants["bare-openvino"]["median_s"])
    if "predict-openvino" in variants and "predict-whole" in variants:
        out[f"{tag} test.py openvino fp32 >= 1.1x FastForward fp32 (through the predictor)"] = (
            variants["predict-openvino"]["speedup_vs_reference"] >= OPENVINO_SPEEDUP_MIN)
    backends = [v for name, v in variants.items()
                if v.get("reference") == "gluon" and name.startswith(("openvino-", "onnxruntime-"))]
    if backends:
        holding = [v["speedup_vs_reference"] for v in backends if v["argmax_agreement"] >= AGREEMENT_MIN]
        out[f"{tag} best backend precision >= 2.5x FastForward fp32 at >= 99% argmax agreement "
            f"(weights: {weights})"] = bool(holding) and max(holding) >= BEST_SPEEDUP_MIN
    return out


def targets(results: Dict[str, object]) -> Dict[str, object]:
    """The issue's targets, met or not, per shape."""
    out: Dict[str, object] = {}
    for entry in results.get("main", []):
        tag = "x".join(map(str, entry["shape"]))
        v = entry["variants"]
        peers = {letter: v[name]["median_s"] for letter, name in (("b", "module"), ("c", "torch")) if name in v}
        if peers:
            out[f"{tag} fp32 (a) <= min({', '.join(peers)})"] = v["gluon"]["median_s"] <= min(peers.values())
        out[f"{tag} (a) >= 60% of GEMM peak"] = v["gluon"]["fraction_of_peak"] >= 0.6
        if entry["shape"] == [1024, 2048]:
            out["1024x2048 (a) peak memory < 8 GB"] = v["gluon"]["peak_rss_mb"] < 8192
        out.update(backend_targets(tag, v, results["weights"]["source"]))
    # The argmax target applies to trained weights: an untrained network amplifies rounding
    # through its 100 layers (bf16, which only rounds, moves random-weight probabilities by up
    # to 0.47 and keeps ~98% of the argmax; 0.1 and 99.5% on a trained one), so random-weight
    # agreement is reported, not scored. int8-residual and int8-all trade accuracy for speed:
    # no target.
    trained = results.get("precision", {}).get("trained")
    if trained:
        for p in ("bf16", "int8"):
            out[f"{p} argmax agreement >= 99% (trained)"] = trained["variants"][p]["argmax_agreement"] >= 0.99
    return out

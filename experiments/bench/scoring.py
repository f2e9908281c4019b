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

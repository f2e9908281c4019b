"""Ground truth, mIoU and the issue's targets for the benchmark."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

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


def score_against_fp32(probabilities: Dict[str, List[np.ndarray]], labels: Sequence[np.ndarray],
                       confident_margin: float) -> Tuple[Dict[str, Dict[str, float]], np.ndarray]:
    """Every variant's argmax and mIoU against ``fp32``'s (FastForward fp32) on the same images.

    Parameters
    ----------
    probabilities : per variant (``fp32`` among them), one (1, L, h, w) array per image.
    labels : per image, the (h, w) trainIds at prediction resolution.
    confident_margin : fp32 top-1 minus top-2 probability from which a pixel counts as confident.

    Returns
    -------
    per variant ``argmax_agreement`` (mean over images of the fraction of pixels whose argmax
    equals fp32's), ``argmax_agreement_confident`` (over the confident pixels; None when none
    is), ``max_abs_difference`` (probabilities), ``miou`` and ``miou_change`` (fractions, minus
    fp32's); and the (P,) bool mask of confident pixels, all images.
    """
    num_classes = probabilities["fp32"][0].shape[1]
    fp32_labels = [p.argmax(axis=1)[0] for p in probabilities["fp32"]]
    fp32_miou = mean_iou(fp32_labels, labels, num_classes)
    confident = np.concatenate([top_two_margin(p[0]).ravel() >= confident_margin for p in probabilities["fp32"]])
    scores = {}
    for name, outputs in probabilities.items():
        predicted = [q.argmax(axis=1)[0] for q in outputs]
        same = np.concatenate([(a == b).ravel() for a, b in zip(predicted, fp32_labels)])
        miou = mean_iou(predicted, labels, num_classes)
        scores[name] = {
            "argmax_agreement": float(np.mean([(a == b).mean() for a, b in zip(predicted, fp32_labels)])),
            "argmax_agreement_confident": float(same[confident].mean()) if confident.any() else None,
            "max_abs_difference": float(max(np.abs(q - r).max() for q, r in zip(outputs, probabilities["fp32"]))),
            "miou": miou, "miou_change": miou - fp32_miou}
    return scores, confident


#: issue 17's deployment targets
PIPELINE_OVERHEAD_MAX = 1.05
OPENVINO_SPEEDUP_MIN = 1.1
BEST_SPEEDUP_MIN = 2.5
AGREEMENT_MIN = 0.99
#: largest |mIoU change| against fp32 of a precision that holds: 0.3 points (mIoU as a fraction)
MIOU_CHANGE_MAX = 0.003
#: name prefixes of the deployment-backend variants (``experiments.bench.backend_variants``)
BACKEND_PREFIXES = ("openvino-", "onnxruntime-")


def holding_backend_precisions(trained: Dict[str, object]) -> List[str]:
    """The backend variants of a precision block (``Suite.precision_set``, trained weights) with
    >= 99% argmax agreement with FastForward fp32 and |mIoU change| <= 0.3 points."""
    return [name for name, v in trained["variants"].items()
            if name.startswith(BACKEND_PREFIXES) and v["argmax_agreement"] >= AGREEMENT_MIN
            and abs(v["miou_change"]) <= MIOU_CHANGE_MAX]


def best_backend_target(tag: str, variants: Dict[str, Dict[str, object]],
                        trained: Dict[str, object]) -> Dict[str, bool]:
    """Target 2 at one shape of the main section: among the backend precisions that hold on the
    trained network (:func:`holding_backend_precisions`), the fastest in ``variants`` (its
    ``speedup_vs_reference`` over FastForward fp32) >= 2.5x. The key names it and its speed-up."""
    speedups = {name: variants[name]["speedup_vs_reference"] for name in holding_backend_precisions(trained)
                if name in variants}
    best = max(speedups, key=speedups.get) if speedups else None
    found = f"{best} x{speedups[best]:.2f}" if best else "none holds"
    return {f"{tag} best backend precision ({found}) >= 2.5x FastForward fp32 with >= 99% argmax agreement "
            f"and |mIoU change| <= 0.3 (trained: {trained['weights']})":
            best is not None and speedups[best] >= BEST_SPEEDUP_MIN}


def backend_targets(tag: str, variants: Dict[str, Dict[str, object]],
                    trained: Optional[Dict[str, object]] = None) -> Dict[str, bool]:
    """The deployment targets at one shape, for the variants measured: test.py with OpenVINO
    fp32 within 5% of the same image by hand around bare OpenVINO, and >= 1.1x the predictor
    with FastForward fp32; with the precision section's ``trained`` block, target 2
    (:func:`best_backend_target`; random weights do not score it: see :func:`targets`)."""
    out: Dict[str, bool] = {}
    if "predict-openvino" in variants and "bare-openvino" in variants:
        out[f"{tag} test.py openvino fp32 within 5% of bare OpenVINO (pre/post included)"] = (
            variants["predict-openvino"]["median_s"] <= PIPELINE_OVERHEAD_MAX * variants["bare-openvino"]["median_s"])
    if "predict-openvino" in variants and "predict-whole" in variants:
        out[f"{tag} test.py openvino fp32 >= 1.1x FastForward fp32 (through the predictor)"] = (
            variants["predict-openvino"]["speedup_vs_reference"] >= OPENVINO_SPEEDUP_MIN)
    if trained is not None and any(name.startswith(BACKEND_PREFIXES) for name in variants):
        out.update(best_backend_target(tag, variants, trained))
    return out


def targets(results: Dict[str, object]) -> Dict[str, object]:
    """The issue's targets, met or not, per shape."""
    out: Dict[str, object] = {}
    # The argmax target applies to trained weights: an untrained network amplifies rounding
    # through its 100 layers (bf16, which only rounds, moves random-weight probabilities by up
    # to 0.47 and keeps ~98% of the argmax; 0.1 and 99.5% on a trained one), so random-weight
    # agreement is reported, not scored. int8-residual and int8-all trade accuracy for speed:
    # no target.
    trained = results.get("precision", {}).get("trained")
    for entry in results.get("main", []):
        tag = "x".join(map(str, entry["shape"]))
        v = entry["variants"]
        peers = {letter: v[name]["median_s"] for letter, name in (("b", "module"), ("c", "torch")) if name in v}
        if peers:
            out[f"{tag} fp32 (a) <= min({', '.join(peers)})"] = v["gluon"]["median_s"] <= min(peers.values())
        out[f"{tag} (a) >= 60% of GEMM peak"] = v["gluon"]["fraction_of_peak"] >= 0.6
        if entry["shape"] == [1024, 2048]:
            out["1024x2048 (a) peak memory < 8 GB"] = v["gluon"]["peak_rss_mb"] < 8192
        out.update(backend_targets(tag, v, trained))
    if trained:
        for p in (p for p in ("bf16", "int8") if p in trained["variants"]):
            out[f"{p} argmax agreement >= 99% (trained)"] = trained["variants"][p]["argmax_agreement"] >= 0.99
        if "main" not in results and any(name.startswith(BACKEND_PREFIXES) for name in trained["variants"]):
            holding = holding_backend_precisions(trained)
            out[f"a backend precision with >= 99% argmax agreement and |mIoU change| <= 0.3 (trained; "
                f"speed not measured: no main section): {', '.join(holding) or 'none'}"] = bool(holding)
    return out

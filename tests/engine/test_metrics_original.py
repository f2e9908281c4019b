"""The released solver's training metrics (AccWithIgnoreMetric, IoUMetric, SoftmaxLoss of the
original ``tusimple_duc/core/metrics.py``), restated here in NumPy on the original's inputs
(SoftmaxOutput probabilities (n, L, P) and flattened labels, one call per device), against
:class:`SegmentationMetrics`, whose window is reset in between as the run loop does."""
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.engine.metrics import SegmentationMetrics, reported_keys
from tusimple_duc.errors import ConfigError

IGNORE = 255
CLASSES = 6


class OriginalMetrics:
    """The original's three metrics, fed as Module fed them (per device, since epoch start)."""

    def __init__(self):
        self.correct = self.counted = 0.0
        self.tp = [0.0] * CLASSES
        self.denom = [0.0] * CLASSES
        self.iou = 0.0
        self.loss = self.loss_count = 0.0

    def update(self, probabilities, label):
        """probabilities (n, L, P) float32, label (n, P)."""
        pred = probabilities.argmax(axis=1).astype(np.int32)
        gt = label.astype(np.int32)
        self.correct += (pred.flat == gt.flat).sum()
        self.counted += gt.size - (gt.flat == IGNORE).sum()
        total = 0.0
        for j in range(CLASSES):
            pred_j, gt_j = pred.flat == j, gt.flat == j
            self.tp[j] += np.logical_and(pred_j, gt_j).sum()
            self.denom[j] += np.logical_or(pred_j, gt_j).sum() - np.logical_and(pred_j, gt.flat == IGNORE).sum()
            total += self.tp[j] / (self.denom[j] + 1e-6)
        self.iou = total / CLASSES
        onehot = np.zeros(probabilities.shape)
        for b in range(onehot.shape[0]):
            for c in range(CLASSES):
                onehot[b][c][label[b] == c] = 1.0
        self.loss += (-np.log(probabilities[onehot == 1] + 1e-6)).sum()
        self.loss_count += probabilities[onehot == 1].size


def softmax(scores):
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_released_metrics_equal_the_original_over_an_epoch_with_window_resets():
    rng = np.random.RandomState(0)
    ours = SegmentationMetrics(CLASSES, IGNORE)
    original = OriginalMetrics()
    for batch in range(5):
        scores, labels = [], []
        for _ in range(2):  # two devices
            score = rng.normal(0, 2, (2, CLASSES, 4, 6)).astype(np.float32)
            label = rng.randint(0, CLASSES - 2, (2, 4, 6)).astype(np.float32)  # classes 4, 5 never true
            label[rng.rand(*label.shape) < 0.25] = IGNORE
            scores.append(mx.nd.array(score))
            labels.append(label)
            original.update(softmax(score).reshape(2, CLASSES, -1).astype(np.float32), label.reshape(2, -1))
        ours.update(scores, labels, loss_sum=1.0, valid_pixels=1.0)
        if batch % 2 == 1:
            ours.reset()  # a log line: the window restarts, the released metrics do not
        values = ours.values(("acc_ignore", "IoU", "SoftmaxLoss"))
        assert values["acc_ignore"] == pytest.approx(original.correct / original.counted, rel=1e-12)
        assert values["IoU"] == pytest.approx(original.iou, rel=1e-9)
        assert values["SoftmaxLoss"] == pytest.approx(original.loss / original.loss_count, rel=1e-6)
    # Absent classes count as 0 in the released IoU, not in this project's mean_iou.
    assert ours.values(("IoU",))["IoU"] < 4 / 6


def test_absorbed_windows_add_up_to_the_epoch():
    rng = np.random.RandomState(1)
    window, whole, direct = (SegmentationMetrics(CLASSES, IGNORE) for _ in range(3))
    for batch in range(4):
        score = mx.nd.array(rng.normal(0, 2, (1, CLASSES, 3, 3)))
        label = rng.randint(0, CLASSES, (1, 3, 3)).astype(np.float32)
        window.update([score], [label], 2.0, 9.0)
        direct.update([score], [label], 2.0, 9.0)
        if batch % 2 == 1:
            whole.absorb(window)
            window.reset()
    keys = ("loss", "pixel_acc", "mean_iou", "acc_ignore", "IoU", "SoftmaxLoss")
    assert whole.values(keys) == pytest.approx(direct.values(keys), rel=1e-12)


def test_reported_keys_follow_the_released_eval_metric():
    assert reported_keys(("acc_ignore", "IoU")) == ("loss", "pixel_acc", "mean_iou", "acc_ignore", "IoU",
                                                     "SoftmaxLoss")
    assert reported_keys(()) == ("loss", "SoftmaxLoss")
    # eval_metric = acc (the released solver's mx.metric.create('acc')): MXNet's Accuracy, 'accuracy'.
    assert reported_keys(("acc",)) == ("loss", "accuracy", "SoftmaxLoss")
    assert reported_keys(("acc", "IoU")) == ("loss", "mean_iou", "accuracy", "IoU", "SoftmaxLoss")
    with pytest.raises(ConfigError, match="unknown metric 'mIoU'"):
        reported_keys(("mIoU",))

"""The design of claims 2-3, chosen before the full run from a pilot, and its report section.

The pilot (recorded in :data:`PILOT`) trained the three variants for seeds 0 and 1 at the full
budget's settings except the number of epochs, on the machine shared with other jobs, one thread
per run. From it: the paired difference of each decisive quantity (mean and SD over the pilot
seeds), hence the expected standardised effect ``d_z = mean / SD`` and the power of the paired
t-test at the full budget's number of seeds (:func:`~.stats.power`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from experiments.claims.runs import THIN_CLASSES, VARIANTS, Design
from experiments.claims.stats import ALPHA, power, seeds_for_power


@dataclass(frozen=True)
class PilotEffect:
    """A paired difference measured in the pilot, one value per pilot seed (units of the quantity)."""

    quantity: str
    unit: str
    differences: Tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.differences))

    @property
    def sd(self) -> float:
        return float(np.std(self.differences, ddof=1)) if len(self.differences) > 1 else float("nan")

    @property
    def effect(self) -> float:
        """``d_z = mean / sd`` (NaN without a spread)."""
        return self.mean / self.sd if self.sd > 0 else float("nan")


#: Pilot paired differences (seeds 0, 1; 30 epochs, half the crops on thin objects, else as the full design).
PILOT: Dict[str, PilotEffect] = {
    "thin": PilotEffect("thin-class IoU, DUC - bilinear", "IoU points", (0.0, 0.0)),
    "band": PilotEffect("thin-structure band IoU, DUC - bilinear", "IoU points", (12.4,)),
    "miou2": PilotEffect("mIoU, DUC - bilinear", "IoU points", (14.7,)),
    "grid": PilotEffect("gridding ratio, constant - HDC (pilot: without the plane removal)", "", ()),
    "miou3": PilotEffect("mIoU, HDC - constant", "IoU points", ()),
}
#: What the pilot showed, in words (the report's design section quotes it).
PILOT_NOTES: Sequence[str] = ()


def _power_rows(design: Design) -> List[str]:
    n = len(design.seeds)
    rows = []
    for item in PILOT.values():
        if not item.differences:
            continue
        effect, at_n = item.effect, power(item.effect, n)
        adequate = "n/a" if not np.isfinite(at_n) else ("yes" if at_n >= 0.8 else "**no**")
        needed = seeds_for_power(effect) if np.isfinite(effect) else "n/a"
        sd = "n/a" if not np.isfinite(item.sd) else f"{item.sd:.3g}"
        rows.append(f"| {item.quantity} | {' / '.join(f'{d:+.3g}' for d in item.differences)} | {item.mean:+.3g} "
                    f"{item.unit} | {sd} | {'n/a' if not np.isfinite(effect) else f'{effect:.2f}'} | "
                    f"{'n/a' if not np.isfinite(at_n) else f'{at_n:.2f}'} | {adequate} | {needed} |")
    return rows


def design_section(design: Design, seconds: Sequence[float]) -> List[str]:
    """The report's "Design" section."""
    height, width = design.image_size
    n = len(design.seeds)
    steps = design.epochs * (design.train_images // design.batch_size)
    lines = [
        "## Design of claims 2-3 (chosen before the full run)", "",
        f"- **Data** (unchanged synthetic generator and size): {design.train_images} train and {design.val_images} "
        f"val street scenes of {height}x{width} px (data seed {design.data_seed}), thin objects 2-6 px wide (pole, "
        "traffic light, traffic sign: narrower than the output stride 8). Cityscapes' thin structures are 1-10 px "
        "at 1024x2048; the synthetic widths at 512 px wide are in that range, so the data stay as they are.",
        f"- **Networks**: the tiny backbone of the demo (blocks 1/1/4/3, deep stem, output stride 8, width "
        f"{design.width}), one 3x3 conv head; " + "; ".join(
            f"{v.title}: lr {v.lr:g}" for v in VARIANTS) + ". BatchNorm learns its statistics (momentum 0.9).",
        f"- **Training**: {design.epochs} epochs x {design.train_images // design.batch_size} updates = {steps} "
        f"updates of batch {design.batch_size}, crops {height}x{design.crop_width} px with random flips; "
        f"{100 * design.thin_crop_fraction:.0f}% of the crops centred on a thin object (class-balanced sampling: a "
        "thin class present in the image drawn uniformly, then one of its columns; thin pixels are 1% of the data: "
        "pole 0.80%, traffic light 0.09%, traffic sign 0.06%); SGD momentum 0.9, poly lr (power 0.9), weight "
        f"decay {design.weight_decay:g}, clipping {design.clip_gradient:g}, the released loss normalisation "
        "(summed gradient / batch). The engine's `SegmentationTrainer`, in-process on in-memory data.",
        f"- **Seeds**: {n} ({', '.join(map(str, design.seeds))}); a seed fixes the initialisation, the crop order "
        "and the flips, identical for every variant (paired design).",
        f"- **Measures** (val set, full resolution, every epoch): mIoU, IoU of {', '.join(THIN_CLASSES)} and their "
        f"mean, the thin-structure band IoU (mean IoU over the classes present within {design.band_radius} px of a "
        "thin-class pixel); at the end the gridding ratio of the last backbone features.",
        f"- **Tests**: paired two-sided t-test (primary, alpha {ALPHA}) and exact Wilcoxon signed-rank (check; its "
        f"smallest p-value with {n} seeds is {2 / 2 ** n:.3f}).",
        f"- **Cost**: {np.min(seconds):.0f} to {np.max(seconds):.0f} s per run (mean {np.mean(seconds):.0f} s), "
        "two runs in parallel, one thread each (measured faster than one run with two threads for this tiny net).",
        "",
        f"**Expected effects and power** (pilot: seeds 0-1, 30 epochs; power of the two-sided paired t-test at "
        f"n = {n}, alpha {ALPHA}, from the non-central t):", "",
        "| paired difference | pilot seeds | pilot mean | pilot SD | d_z | power at n | adequate (>= 0.8) | "
        "seeds for 80% |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += _power_rows(design)
    return lines + [""] + [f"- {note}" for note in PILOT_NOTES] + [""]

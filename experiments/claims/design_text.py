"""The design of claims 2-3, chosen before the full run from a pilot, and its report section.

The pilot (recorded in :data:`PILOT`) trained the three variants for seeds 0 and 1 at the full
budget's settings except the number of epochs, on the machine shared with other jobs, one thread
per run. From it: the paired difference of each decisive quantity (mean and SD over the pilot
seeds), hence the expected standardised effect ``d_z = mean / SD`` and the power of the paired
t-test at the full budget's number of seeds (:func:`~.stats.power`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from experiments.claims.runs import THIN_CLASSES, VARIANTS, Design
from experiments.claims.stats import ALPHA, power, seeds_for_power


@dataclass(frozen=True)
class PilotEffect:
    """A paired difference measured in the pilot: ``mean`` and ``sd`` over ``seeds`` (units of the quantity)."""

    quantity: str
    unit: str
    mean: float
    sd: float
    seeds: int

    @property
    def effect(self) -> float:
        return self.mean / self.sd if self.sd > 0 else float("inf")


#: Pilot: seeds 0-1, 30 epochs, every other setting as the full design (OMP_NUM_THREADS=1, shared cores).
PILOT: Dict[str, PilotEffect] = {
    "thin": PilotEffect("thin-class IoU, DUC - bilinear", "IoU points", float("nan"), float("nan"), 2),
    "band": PilotEffect("thin-structure band IoU, DUC - bilinear", "IoU points", float("nan"), float("nan"), 2),
    "grid": PilotEffect("gridding ratio, constant - HDC", "", float("nan"), float("nan"), 2),
    "miou": PilotEffect("mIoU, HDC - constant", "IoU points", float("nan"), float("nan"), 2),
}
#: Pilot learning curve of DUC + HDC (seed 0): thin-class IoU (%) at epochs 5, 10, ..., 30.
PILOT_THIN_CURVE: Sequence[float] = ()


def _power_rows(design: Design) -> List[str]:
    n = len(design.seeds)
    rows = []
    for item in PILOT.values():
        effect = item.effect
        shown = "inf" if not np.isfinite(effect) else f"{effect:.2f}"
        at_n = 1.0 if effect == float("inf") else power(effect, n)
        needed = seeds_for_power(effect) if np.isfinite(effect) else 2
        adequate = "n/a" if not np.isfinite(at_n) else ("yes" if at_n >= 0.8 else "**no**")
        rows.append(f"| {item.quantity} | {item.mean:+.3g} {item.unit} | {item.sd:.3g} | {shown} | "
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
        f"{100 * design.thin_crop_fraction:.0f}% of the crops centred on a random thin-class pixel (class-balanced "
        "sampling: thin pixels are about 1% of the data, and at uniform crops the pilot's DUC network had not "
        "labelled any of them after the epochs affordable here); SGD momentum 0.9, poly lr (power 0.9), weight "
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
        "| paired difference | pilot mean | pilot SD | d_z | power at n | adequate (>= 0.8) | seeds for 80% |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += _power_rows(design)
    if PILOT_THIN_CURVE:
        lines += ["", "Pilot thin-class IoU of DUC + HDC at epochs 5, 10, ...: "
                  + ", ".join(f"{v:.1f}" for v in PILOT_THIN_CURVE) + " %."]
    return lines + [""]

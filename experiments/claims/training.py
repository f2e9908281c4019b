"""Claims 2-3 measured: train network variants on the demo's synthetic data, several seeds each.

Every run is the demo's training and test code path (``experiments.demo.pipeline``: the same
configs, data and protocol) with the variant's ``[network] head`` and ``dilation_schedule``
and the run's ``[env] seed`` (initialisation, sample order, augmentation; the data are the same
for every run). A run is scored by the official Cityscapes protocol on the val split and by the
gridding index (:mod:`.claims_measures`) of its probability maps.
"""
from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tusimple_duc.config import TrainConfig
from tusimple_duc.data.labels import CITYSCAPES_NUM_CLASSES
from tusimple_duc.data.readers import LabelCodec
from tusimple_duc.synthetic.cityscapes import SyntheticSummary
from tusimple_duc.evaluation.report import EvaluationResult
from tusimple_duc.models.from_config import spec_from_train_config
from tusimple_duc.models.heads import aspp_rates
from experiments.claims.measures import ceiling_labels, gridding_index, one_hot
from experiments.demo.pipeline import (QUICK_DATA, QUICK_TRAIN_OVERRIDES, DemoData, DemoPaths, demo_test_config,
                                         demo_train_config, evaluate_model, score_label_maps, train_model,
                                         write_dataset, write_dataset_lists)

#: The classes narrower than the output stride in the synthetic data (poles, lights, signs < 8 px).
THIN_CLASSES: Tuple[str, ...] = ("pole", "traffic light", "traffic sign")


@dataclass(frozen=True)
class Variant:
    """A network variant: the tiny backbone with a head and a dilation schedule, and the learning
    rate it is trained with (None: the demo config's)."""

    key: str
    title: str
    short: str
    head: str
    schedule: str
    lr: Optional[float] = None

    def network_overrides(self) -> List[str]:
        """``--set`` values selecting the architecture (train and test configs alike)."""
        return [f"network.head={self.head}", f"network.dilation_schedule={self.schedule}"]

    def training_overrides(self) -> List[str]:
        """``--set`` values of the training config: the architecture and the learning rate."""
        return self.network_overrides() + ([] if self.lr is None else [f"model.lr={self.lr:g}"])


#: The variants of claims 2 (DUC vs bilinear, same HDC backbone) and 3 (HDC vs constant rates, DUC).
#: Each head trains at its own best learning rate of {0.4, 0.2, 0.08, 0.02} (seed 0, found while tuning
#: the demo; batch 4, the released rescale_grad 1/4): the DUC head's loss is averaged over 16x more
#: (sub-)pixels, so its weights take 16x smaller steps than the bilinear head's at the same rate, and
#: at DUC's 0.4 the bilinear head learns far less.
DUC_HDC = Variant("duc_hdc", "DUC + HDC (dilation-bigger)", "DUC, HDC", "duc", "dilation-bigger")
BILINEAR_HDC = Variant("bilinear_hdc", "bilinear + HDC (dilation-bigger)", "bilinear, HDC", "bilinear",
                       "dilation-bigger", lr=0.08)
DUC_CONSTANT = Variant("duc_constant", "DUC + constant rates (deeplab)", "DUC, constant", "duc", "deeplab")
#: The learning-rate check of claim 2 (first seed only): each head at the other head's rate.
DUC_HDC_LOW_LR = Variant("duc_hdc_lr0.08", "DUC + HDC, lr 0.08", "DUC, lr 0.08", "duc", "dilation-bigger", lr=0.08)
BILINEAR_HDC_HIGH_LR = Variant("bilinear_hdc_lr0.4", "bilinear + HDC, lr 0.4", "bilinear, lr 0.4", "bilinear",
                               "dilation-bigger", lr=0.4)


@dataclass(frozen=True)
class Budget:
    """Data and training budget of one run: the dataset, and overrides of the demo training config."""

    data: DemoData
    train_overrides: Tuple[str, ...]

    @property
    def description(self) -> str:
        data = self.data
        changes = ", ".join(f"`{item}`" for item in self.train_overrides) or "none"
        return (f"{data.train_images} train and {data.val_images} val synthetic images of "
                f"{data.image_size[0]}x{data.image_size[1]} (seed {data.seed}); the demo's training config with "
                f"{changes}")


#: 3 of the demo's 6 epochs on the demo's data: about 3 minutes per run on 2 busy CPU cores.
FULL_BUDGET = Budget(DemoData(), ("model.num_epochs=3",))
QUICK_BUDGET = Budget(QUICK_DATA, QUICK_TRAIN_OVERRIDES)


@dataclass
class RunResult:
    """One trained and tested variant.

    ``miou`` and ``class_iou`` (name -> IoU) are the official Cityscapes scores (fractions);
    ``gridding`` the gridding index of its val probabilities; ``seconds`` the training time.
    """

    variant: str
    seed: int
    miou: float
    class_iou: Dict[str, float]
    gridding: float
    seconds: float
    result_dir: str


@dataclass
class Experiment:
    """Shared state of the training claims: the dataset, where runs go, the budget, the configs."""

    work_dir: str
    train_config: str
    test_config: str
    budget: Budget
    summary: SyntheticSummary = field(init=False)
    results: Dict[Tuple[str, int], RunResult] = field(default_factory=dict)

    @property
    def data_paths(self) -> DemoPaths:
        return DemoPaths(os.path.join(self.work_dir, "data"))

    def prepare(self) -> None:
        """Write the synthetic dataset and its lists once."""
        self.summary = write_dataset(self.data_paths, self.budget.data)
        write_dataset_lists(self.data_paths, self.budget.data)

    def run_dir(self, variant: Variant, seed: int) -> str:
        """Folder of one run: ``model/`` and test.py's outputs."""
        return os.path.join(self.work_dir, f"{variant.key}_seed{seed}")

    def train_config_of(self, variant: Variant, seed: int) -> TrainConfig:
        """The demo training config with the budget, the variant and the seed."""
        overrides = [f"env.seed={seed}", *self.budget.train_overrides, *variant.training_overrides(),
                     f"model.model_dir={os.path.join(self.run_dir(variant, seed), 'model')}"]
        return demo_train_config(self.train_config, self.data_paths, overrides)

    def describe(self, variant: Variant) -> str:
        """The network and optimisation of ``variant`` in words, from its resolved config."""
        config = self.train_config_of(variant, 0)
        spec = spec_from_train_config(config)
        model, data = config.model, config.data
        rates = aspp_rates(spec.aspp, spec.aspp_stride)
        head = f"ASPP of {spec.aspp} 3x3 convs (rates {', '.join(map(str, rates))})" if rates else "one 3x3 conv"
        head += f", DUC cell width {spec.cell_width}" if spec.head == "duc" else ", bilinear upsampling"
        return (f"width {spec.width}, blocks {'/'.join(map(str, spec.blocks))}, {spec.stem} stem, output stride "
                f"{spec.output_stride}, dilation schedule `{spec.dilation_schedule}`, head: {head}; BatchNorm "
                f"{'frozen' if spec.bn_use_global_stats else 'learning its statistics'}; SGD lr {model.lr:g} "
                f"({model.lr_policy}), momentum {model.momentum:g}, weight decay {model.weight_decay:g}, batch "
                f"{data.batch_size} of {data.crop_shape[0]}x{data.crop_shape[1]} crops at scales "
                f"{', '.join(f'{s:g}' for s in data.scale_factors)}, {model.num_epochs} epoch(s) of the 7-fold list")

    def run(self, variant: Variant, seed: int, show_progress: bool = False) -> RunResult:
        """Train and test ``variant`` with ``seed`` (cached: each pair runs once)."""
        key = (variant.key, seed)
        if key in self.results:
            return self.results[key]
        run_dir = self.run_dir(variant, seed)
        train_config = self.train_config_of(variant, seed)
        start = time.time()
        train_model(train_config)
        seconds = time.time() - start
        test_config = demo_test_config(self.test_config, self.data_paths, train_config, self.budget.data,
                                       [*variant.network_overrides(), f"model.result_dir={run_dir}",
                                        "output.save_probabilities=True"])
        tested = evaluate_model(test_config, show_progress)
        classes = tested.metrics.tables[0]
        result = RunResult(variant.key, seed, float(tested.metrics.summary["mIoU"]),
                           {name: float(v) for name, v in zip(classes.names, classes.columns["IoU"])},
                           gridding_index(_probabilities(run_dir), train_config.data.ds_rate or 8), seconds, run_dir)
        self.results[key] = result
        return result

    def ceiling(self, stride: int) -> EvaluationResult:
        """The upsampling ceiling of ``stride`` on the val split, scored by the official protocol."""
        return score_label_maps(self.summary.frames["val"],
                                lambda ground_truth: ceiling_labels(ground_truth, stride, CITYSCAPES_NUM_CLASSES),
                                f"ceiling of stride {stride}")

    def ground_truth_gridding(self, cell: int = 8) -> float:
        """The gridding index of the one-hot val ground truth (the artefact-free reference)."""
        codec = LabelCodec("cityscapes")
        maps = (one_hot(codec.lut[codec.read(frame.files["gtFine_labelIds"])], CITYSCAPES_NUM_CLASSES)
                for frame in self.summary.frames["val"])
        return gridding_index(maps, cell)


def _probabilities(result_dir: str):
    """The (L, H, W) probability maps test.py wrote to ``result_dir/prob``."""
    for path in sorted(glob.glob(os.path.join(result_dir, "prob", "*.npz"))):
        with np.load(path) as archive:
            yield archive["probabilities"].astype(np.float32)


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation and the values of one quantity over seeds."""

    values: Tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else float("nan")


def spread(results: Sequence[RunResult], quantity) -> Spread:
    """``quantity(result)`` over ``results`` (in seed order)."""
    return Spread(tuple(float(quantity(r)) for r in sorted(results, key=lambda r: r.seed)))

"""Everything a paper experiment needs, checked before any work (``tools/preflight.py``).

:func:`preflight` takes the training configs a ``tools/paper/*.sh`` script will run and answers,
one line per missing item with the command that makes it: the dataset folders the lists are
read from, the lists (made here when the dataset folder holds what they are derived from, with a
line saying so), the test list, the initial weights (ImageNet or an earlier checkpoint not made
by the script itself), the GPUs asked for and the disk space for the checkpoints.

With ``rehearsal`` it also writes, for :func:`rehearsal_configs`, each config as its rehearsal:
the same experiment (head, ASPP, cell width, dilation schedule, dataset, lists) with the tiny
backbone (width 8, blocks 1/1/4/3), one epoch, a few images, the CPU, no ImageNet weights.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from tusimple_duc.config import TrainConfig, load_train_config, to_ini
from tusimple_duc.data.datasets import Lists
from tusimple_duc.data.lists import ListEntry, read_list, write_list
from tusimple_duc.datasets import dataset_lists
from tusimple_duc.errors import DUCError
from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.io.pretrained import locate_model_file
from tusimple_duc.io.symbol import training_symbol
from tusimple_duc.models.from_config import spec_from_train_config

#: The official download pages of the datasets (docs/DATA.md says which file goes where).
DATASET_SOURCES = {
    "cityscapes": "https://www.cityscapes-dataset.com/downloads/",
    "kitti": "http://www.cvlibs.net/datasets/kitti/eval_road.php (data_road.zip)",
    "voc": "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ + SBD (SegmentationClassAug)",
}
#: Sub-folder of the dataset root -> the download that holds it.
FOLDER_SOURCES = {
    "leftImg8bit/train": "leftImg8bit_trainvaltest.zip", "leftImg8bit/val": "leftImg8bit_trainvaltest.zip",
    "gtFine/train": "gtFine_trainvaltest.zip", "gtFine/val": "gtFine_trainvaltest.zip",
    "leftImg8bit/train_extra": "leftImg8bit_trainextra.zip", "gtCoarse/train_extra": "gtCoarse.zip",
    "training/image_2": "data_road.zip", "training/gt_image_2": "data_road.zip",
    "JPEGImages": "VOCtrainval_11-May-2012.tar", "SegmentationClass": "VOCtrainval_11-May-2012.tar",
    "ImageSets/Segmentation": "VOCtrainval_11-May-2012.tar",
    "SegmentationClassAug": "SBD labels as PNG (SegmentationClassAug.zip)",
}
#: list name -> (the lists of the dataset builder it concatenates, needs the optional annotations:
#: Cityscapes gtCoarse, VOC SegmentationClassAug)
CITYSCAPES_LISTS: Dict[str, Tuple[Tuple[str, ...], bool]] = {
    "train": (("train",), False), "train_7fold": (("train_7fold",), False),
    "train_12fold": (("train_12fold",), False), "val": (("val",), False), "val_7fold": (("val_7fold",), False),
    "train_extra_7fold": (("train_extra_7fold",), True), "train_extra_12fold": (("train_extra_12fold",), True),
    "train_fine_coarse_7fold": (("train_7fold", "train_extra_7fold"), True),
    "train_fine_coarse_12fold": (("train_12fold", "train_extra_12fold"), True),
}
#: KITTI road's val.lst: its training images (no public val ground truth; see KITTI_VAL_NOTE)
KITTI_LISTS = {"train_patches": (("train_patches",), False), "train": (("train",), False),
               "val": (("train",), False)}
KITTI_VAL_NOTE = ("KITTI road has no public val ground truth: this val.lst is the training images, so its score "
                  "only proves the plumbing; for a real score hold some out (train on the others)")
VOC_LISTS = {name: ((name,), name.endswith("_aug")) for name in ("train", "val", "trainval", "train_aug",
                                                                   "trainval_aug")}
RECIPES = {"cityscapes": CITYSCAPES_LISTS, "kitti": KITTI_LISTS, "voc": VOC_LISTS}
#: bytes per parameter in a checkpoint: the .params and the optimizer's momentum (.states), float32
CHECKPOINT_BYTES_PER_PARAMETER = 8
#: the rehearsal's backbone (the tiny presets') and sizes
REHEARSAL_NETWORK = {"width": 8, "blocks_per_stage": (1, 1, 4, 3)}
REHEARSAL_TRAIN_IMAGES = 4
REHEARSAL_TEST_IMAGES = 2
REHEARSAL_CROP = 64


@dataclass
class Preflight:
    """The answer: ``problems`` (one line each, what is missing and the command that makes it),
    ``notes`` (what was made or decided on the way)."""

    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    checked_lists: Set[str] = field(default_factory=set)


def required_folders(dataset: str, list_name: str) -> List[str]:
    """The sub-folders of the dataset root list ``list_name`` is derived from."""
    if dataset == "kitti":
        return ["training/image_2", "training/gt_image_2"]
    if dataset == "voc":
        return ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"] + (
            ["SegmentationClassAug"] if list_name.endswith("_aug") else [])
    splits = ["val"] if list_name.startswith("val") else ["train"]
    folders = [f"{kind}/{split}" for split in splits for kind in ("leftImg8bit", "gtFine")]
    if CITYSCAPES_LISTS.get(list_name, ((), False))[1]:
        folders += ["leftImg8bit/train_extra", "gtCoarse/train_extra"]
    return folders


def make_list(dataset: str, root: str, path: str, built: Dict[Tuple[str, bool], Lists]) -> int:
    """Write list ``path`` (named after a :data:`RECIPES` entry) from the dataset folder ``root``;
    returns its line count. ``built`` caches the builder's lists between calls."""
    name = os.path.splitext(os.path.basename(path))[0]
    parts, coarse = RECIPES[dataset][name]
    key = (root, coarse)
    if key not in built:
        built[key] = dataset_lists(dataset, root, **({"coarse": True} if coarse and dataset == "cityscapes" else {}))
    entries = [entry for part in parts for entry in built[key][part]]
    renumbered = [dataclasses.replace(entry, index=index) for index, entry in enumerate(entries)]
    return write_list(path, renumbered)


def check_list(path: str, dataset: str, root: str, result: Preflight, built: Dict, what: str) -> None:
    """A list that must exist: present, made from ``root`` (a note), or a problem line (once per list)."""
    if os.path.isfile(path) or path in result.checked_lists:
        return
    result.checked_lists.add(path)
    name = os.path.splitext(os.path.basename(path))[0]
    if name not in RECIPES.get(dataset, {}):
        result.problems.append(f"{path}: {what} not found, and it is not derived from the dataset folder: "
                               f"write it (format: data_lists/README.md)")
        return
    base = os.path.join(root, "VOC2012") if dataset == "voc" and os.path.isdir(os.path.join(root, "VOC2012")) \
        else root  # VOC: DATA_ROOT may be VOCdevkit (tusimple_duc.datasets.voc.voc_folder)
    missing = [folder for folder in required_folders(dataset, name) if not os.path.isdir(os.path.join(base, folder))]
    if missing:
        result.problems.append(f"{path}: {what} not found; it is made from {root}, which lacks "
                               + ", ".join(f"{folder}/ ({FOLDER_SOURCES[folder]})" for folder in missing)
                               + f": download from {DATASET_SOURCES[dataset]} and unpack into {root}")
        return
    try:
        count = make_list(dataset, root, path, built)
    except DUCError as err:
        result.problems.append(f"{path}: {what} not found, and making it from {root} failed: {err}")
        return
    result.notes.append(f"made {path} ({count} lines) from {root} (python tools/make_lists.py {dataset} {root} ...)")
    if dataset == "kitti" and name == "val":
        result.notes.append(KITTI_VAL_NOTE)


def parameter_count(config: TrainConfig) -> Optional[int]:
    """Parameters of the config's network (shape inference of its symbol; None if it has no symbol)."""
    try:
        symbol = training_symbol(spec_from_train_config(config))
        rows, cols = config.data.crop_shape
        shapes, _, _ = symbol.infer_shape(data=(1, 3, rows, cols))
    except (DUCError, TypeError, ValueError):
        return None
    names = symbol.list_arguments()
    return sum(math.prod(shape) for name, shape in zip(names, shapes) if name not in ("data", "seg_loss_label"))


def free_bytes(folder: str) -> int:
    """Free bytes of the file system that ``folder`` (or its nearest existing parent) is on."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return shutil.disk_usage(existing).free


def visible_gpus() -> int:
    """GPUs MXNet sees (0 without CUDA)."""
    import mxnet as mx

    try:
        return int(mx.context.num_gpus())
    except mx.base.MXNetError:
        return 0


def check_gpus(gpus: str, result: Preflight) -> None:
    """``gpus`` (``0,1,2,3``; ``-1`` = the CPU) against the GPUs present."""
    if gpus.strip() == "-1":
        return
    try:
        wanted = [int(v) for v in gpus.split(",")]
    except ValueError:
        result.problems.append(f"GPUS={gpus}: expected device numbers like 0,1,2,3, or -1 for the CPU")
        return
    present = visible_gpus()
    if max(wanted) >= present:
        result.problems.append(f"GPUS={gpus}: this machine has {present} GPU(s) (mx.context.num_gpus()); "
                               f"set GPUS to devices 0..{present - 1}" if present else
                               f"GPUS={gpus}: this machine has no GPU MXNet can use (mx.context.num_gpus() = 0; "
                               f"pip install -e '.[gpu]' on a CUDA machine), or GPUS=-1 for the CPU "
                               f"(REHEARSE=1 rehearses on the CPU)")


def preflight(names: Sequence[str], data_root: str, lists: str, gpus: str, configs: str = "configs/train",
              rehearsal: Optional[str] = None) -> Preflight:
    """Check (and make the derivable lists of) the experiments ``names`` (``<configs>/<name>.cfg``).

    Parameters
    ----------
    names : the training configs the script runs, in order (a later one may load an earlier one's
        checkpoint).
    data_root : the dataset folder (``DATA_ROOT``: ``[data] data_dir`` and ``label_dir``).
    lists : the folder of the test list ``val.lst`` (``LISTS``).
    gpus : ``GPUS`` (``-1``: the CPU).
    rehearsal : a folder: also write the rehearsal configs and lists there (:func:`rehearse`).
    """
    result = Preflight()
    built: Dict = {}
    if not os.path.isdir(data_root):
        datasets = ", ".join(sorted(DATASET_SOURCES))
        result.problems.append(f"DATA_ROOT={data_root}: no such folder: download the dataset ({datasets}: "
                               f"docs/DATA.md) and set DATA_ROOT to its folder")
        return result
    real_run = Preflight()  # what only the real run needs: GPUs, ImageNet weights, disk
    check_gpus(gpus, real_run)
    loaded: Dict[str, TrainConfig] = {}
    for name in names:
        path = os.path.join(configs, f"{name}.cfg")
        try:
            loaded[name] = load_train_config(path, [f"data.data_dir={data_root}", f"data.label_dir={data_root}"])
        except DUCError as err:
            result.problems.append(str(err))
    produced = {os.path.normpath(config.model.model_dir) for config in loaded.values()}
    needed = 0
    weights: Dict[str, List[str]] = {}
    for name, config in loaded.items():
        data, model = config.data, config.model
        check_list(data.train_list, data.dataset, data_root, result, built, f"training list of {name}")
        if data.use_val and data.val_list:
            check_list(data.val_list, data.dataset, data_root, result, built, f"validation list of {name}")
        if model.pretrained and not os.path.isfile(model.pretrained):
            weights.setdefault(model.pretrained, []).append(name)
        if model.load_model_dir and os.path.normpath(model.load_model_dir) not in produced \
                and not os.path.isdir(model.load_model_dir):
            result.problems.append(f"{name}: initial checkpoint folder {model.load_model_dir} not found "
                                   f"([model] load_model_dir; train the experiment that writes it first)")
        count = parameter_count(config)
        if count:
            needed += count * CHECKPOINT_BYTES_PER_PARAMETER * (model.num_epochs // model.checkpoint_interval)
    for source, users in weights.items():
        try:
            locate_model_file(source)
        except DUCError:
            real_run.problems.append(
                f"ImageNet weights {source} (of {', '.join(users)}) not in ~/.mxnet/models ($MXNET_HOME/models): "
                f"python -c \"import mxnet; mxnet.gluon.model_zoo.vision.get_model('{source}', pretrained=True)\"")
    if loaded:
        dataset = next(iter(loaded.values())).data.dataset
        check_list(os.path.join(lists, "val.lst"), dataset, data_root, result, built, "test list")
    if needed:
        models_folder = next(iter(loaded.values())).model.model_dir
        free = free_bytes(models_folder)
        if free < needed:
            real_run.problems.append(f"disk: the checkpoints need about {needed / 1e9:.1f} GB where the models go "
                                   f"({models_folder}), {free / 1e9:.1f} GB free: free space, or raise "
                                   f"[model] checkpoint_interval (--set model.checkpoint_interval=5)")
    if rehearsal is None:
        result.problems += real_run.problems
    else:
        result.notes += [f"the real run will need: {line}" for line in real_run.problems]
        if not result.problems:
            rehearse(loaded, data_root, lists, rehearsal, result)
    return result


def rehearse(loaded: Dict[str, TrainConfig], data_root: str, lists: str, folder: str, result: Preflight) -> None:
    """Write ``<folder>/configs/<name>.cfg`` (the rehearsal of each config) and the short lists
    ``<folder>/lists/*.lst`` they read (the first images of the user's lists)."""
    renamed = {os.path.normpath(config.model.model_dir): os.path.join(folder, "models", name)
               for name, config in loaded.items()}
    for name, config in loaded.items():
        data, model = config.data, config.model
        train_list = _short_list(data.train_list, folder, REHEARSAL_TRAIN_IMAGES)
        val_list = _short_list(data.val_list, folder, REHEARSAL_TEST_IMAGES) if data.use_val and data.val_list \
            else data.val_list
        crop = (REHEARSAL_CROP, REHEARSAL_CROP)
        rehearsed = dataclasses.replace(
            config,
            env=dataclasses.replace(config.env, use_cpu=True, cpus=1, kv_store="local"),
            network=dataclasses.replace(config.network, **REHEARSAL_NETWORK),
            # a phase 2 goes on from the epoch it loads (1 in the rehearsal), as the real one from its load_epoch
            model=dataclasses.replace(
                model, num_epochs=2 if model.load_model_dir else 1, checkpoint_interval=1,
                model_dir=renamed[os.path.normpath(model.model_dir)],
                pretrained=None, lr_factor_epoch=min(model.lr_factor_epoch, 1.0),
                load_model_dir=renamed.get(os.path.normpath(model.load_model_dir or ""), model.load_model_dir),
                load_epoch=1 if model.load_model_dir else model.load_epoch, log_interval=1),
            data=dataclasses.replace(data, train_list=train_list, val_list=val_list, batch_size=1, crop_shape=crop,
                                     inner_crop=crop, random_bound=(8, 8), num_workers=0))
        atomic_write_text(os.path.join(folder, "configs", f"{name}.cfg"), to_ini(rehearsed))
    _short_list(os.path.join(lists, "val.lst"), folder, REHEARSAL_TEST_IMAGES)
    result.notes.append(f"rehearsal: {len(loaded)} config(s) in {folder}/configs (tiny backbone, 1 epoch, "
                        f"{REHEARSAL_TRAIN_IMAGES} training / {REHEARSAL_TEST_IMAGES} test images of {data_root}, "
                        f"the CPU, no ImageNet weights)")


def _short_list(path: str, folder: str, count: int) -> str:
    """``<folder>/lists/<name>``: the first ``count`` entries of list ``path`` (renumbered)."""
    entries: List[ListEntry] = read_list(path)[:count]
    short = os.path.join(folder, "lists", os.path.basename(path))
    write_list(short, [dataclasses.replace(entry, index=index) for index, entry in enumerate(entries)])
    return short

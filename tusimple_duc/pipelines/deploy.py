"""tools/export_model.py's pipeline: the export with its dataset's deployment contract.

:func:`export_for_deployment` resolves the dataset and the input mean (from the training config
when one is given, else ``dataset`` and the released mean) into the
:class:`~tusimple_duc.io.onnx_deploy.DatasetFacts` the ONNX's ``metadata_props`` carry, and calls
:func:`tusimple_duc.io.export.export_model`.
"""
from __future__ import annotations

from typing import Optional, Tuple

from tusimple_duc.config import RELEASED_RGB_MEAN, load_train_config
from tusimple_duc.datasets import get_dataset
from tusimple_duc.io.export import RELEASED_TEST_SHAPE, ExportResult, export_model
from tusimple_duc.io.onnx_deploy import DEPLOY_OUTPUTS, DatasetFacts
from tusimple_duc.io.symbol import DEFAULT_IGNORE_LABEL

#: the dataset of an export without a training config (the released model's)
DEFAULT_DATASET = "cityscapes"


def dataset_facts(dataset: Optional[str], config: Optional[str]) -> DatasetFacts:
    """The facts of ``dataset`` (default: the config's ``[data] dataset``, else :data:`DEFAULT_DATASET`)
    with the config's ``[data] rgb_mean`` (else the released mean)."""
    rgb_mean = RELEASED_RGB_MEAN
    if config:
        data = load_train_config(config).data
        dataset, rgb_mean = dataset or data.dataset, tuple(data.rgb_mean)
    spec = get_dataset(dataset or DEFAULT_DATASET, "--dataset")
    return DatasetFacts(spec.name, tuple(spec.class_names), spec.label_ids, rgb_mean)


def export_for_deployment(prefix: str, epoch: Optional[int], out: str, preset: Optional[str] = None,
                          config: Optional[str] = None, dataset: Optional[str] = None,
                          shape: Tuple[int, int] = RELEASED_TEST_SHAPE, onnx_path: Optional[str] = None,
                          onnx_output: str = DEPLOY_OUTPUTS[0],
                          ignore_label: int = DEFAULT_IGNORE_LABEL, overwrite: bool = False) -> ExportResult:
    """:func:`~tusimple_duc.io.export.export_model` with the ONNX metadata of :func:`dataset_facts`."""
    facts = dataset_facts(dataset, config) if onnx_path else None
    return export_model(prefix, epoch, out, preset, config=config, shape=shape, onnx_path=onnx_path,
                        ignore_label=ignore_label, onnx_output=onnx_output, facts=facts, overwrite=overwrite)

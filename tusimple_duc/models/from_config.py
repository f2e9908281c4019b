"""The :class:`ModelSpec` a train or test config describes (one mapping for both)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

from tusimple_duc.config import ArchitectureSection, TestConfig, TrainConfig
from tusimple_duc.errors import ConfigError
from tusimple_duc.models.presets import ModelSpec, ModelSpecError, get_spec
from tusimple_duc.models.systems import (RESNET_STRIDE, SYSTEM_PRESETS, SystemSpec, SystemSpecError,
                                         get_system_spec)

#: The ``[network]`` / ``[data]`` keys a comparison system takes (ResNet systems only: the encoder's).
_RESNET_SYSTEM_KEYS = ("depth", "width", "blocks_per_stage", "bn_use_global_stats", "bn_momentum",
                       "dilation_schedule")


def spec_from_sections(architecture: ArchitectureSection, num_classes: int, output_stride: Optional[int],
                       cell_width: Optional[int], bn_use_global_stats: Optional[bool] = None,
                       source: str = "<config>", bn_momentum: Optional[float] = None
                       ) -> Union[ModelSpec, SystemSpec]:
    """``architecture.preset`` with every key that is set applied on top.

    Parameters
    ----------
    architecture : the ``[network]`` keys (preset and optional overrides).
    num_classes : L (``label_num``), always applied.
    output_stride, cell_width, bn_use_global_stats, bn_momentum : applied when not None.
    """
    overrides: Dict[str, Any] = {"num_classes": num_classes}
    optional = {
        "aspp": architecture.aspp, "aspp_stride": architecture.aspp_stride, "depth": architecture.depth,
        "stem": architecture.stem, "head": architecture.head, "dilation_schedule": architecture.dilation_schedule,
        "width": architecture.width, "blocks_per_stage": architecture.blocks_per_stage,
        "output_stride": output_stride, "cell_width": cell_width, "bn_use_global_stats": bn_use_global_stats,
        "bn_momentum": bn_momentum,
    }
    overrides.update({key: value for key, value in optional.items() if value is not None})
    if architecture.preset in SYSTEM_PRESETS:
        return _system_spec(architecture.preset, overrides, source)
    try:
        return get_spec(architecture.preset, **overrides)
    except ModelSpecError as err:
        raise ConfigError(f"{source}: [network] {err}") from None


def spec_from_train_config(config: TrainConfig) -> ModelSpec:
    """The network of a training config: ``[network]`` plus ``[data] ds_rate``."""
    network = config.network
    return spec_from_sections(network, network.label_num, config.data.ds_rate, network.cell_width,
                              network.bn_use_global_stats, config.source, network.bn_momentum)


def spec_from_test_config(config: TestConfig) -> ModelSpec:
    """The network of a test config: ``[network]``, ``[model] label_num``, ``[data] ds_rate, cell_width``."""
    return spec_from_sections(config.network, config.model.label_num, config.data.ds_rate, config.data.cell_width,
                              source=config.source)


def _system_spec(preset: str, overrides: Dict[str, Any], source: str) -> SystemSpec:
    """The comparison system ``preset`` with the keys that apply to it; a key that does not apply
    (DUC head keys; ResNet keys of a VGG or U-Net system; ``ds_rate`` other than the system's
    prediction stride, except DeepLab v3's output stride 8 or 16) is an error naming it."""
    system = SYSTEM_PRESETS[preset].system
    allowed = ("num_classes", "output_stride")
    if system in RESNET_STRIDE or system == "deeplab_v3":
        allowed += _RESNET_SYSTEM_KEYS
    wrong = [key for key in overrides if key not in allowed]
    if wrong:
        takes = ", ".join(("preset", "label_num", "[data] ds_rate") + allowed[2:])
        raise ConfigError(f"{source}: [network] {wrong[0]}: does not apply to the {system} system of preset "
                          f"{preset!r} (it takes {takes})")
    fields = dict(overrides)
    stride = fields.pop("output_stride", None)
    if system == "deeplab_v3" and stride is not None:
        fields["output_stride"] = stride
    try:
        spec = get_system_spec(preset, **fields)
    except SystemSpecError as err:
        raise ConfigError(f"{source}: [network] {err}") from None
    if stride is not None and stride != spec.prediction_stride:
        raise ConfigError(f"{source}: [data] ds_rate: the {system} system of preset {preset!r} predicts at "
                          f"stride {spec.prediction_stride}, got {stride}")
    return spec

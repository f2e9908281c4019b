"""The :class:`ModelSpec` a train or test config describes (one mapping for both)."""
from __future__ import annotations

from typing import Any, Dict, Optional

from tusimple_duc.config import ArchitectureSection, TestConfig, TrainConfig
from tusimple_duc.errors import ConfigError
from tusimple_duc.models.presets import ModelSpec, ModelSpecError, get_spec


def spec_from_sections(architecture: ArchitectureSection, num_classes: int, output_stride: Optional[int],
                       cell_width: Optional[int], bn_use_global_stats: Optional[bool] = None,
                       source: str = "<config>", bn_momentum: Optional[float] = None) -> ModelSpec:
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

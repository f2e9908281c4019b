"""The original's ``train/solver.py``: ``Solver(config).fit()`` trains as ``train.py`` does.

``config`` is the original's ``ConfigParser`` that has read a training INI file (or a path, or
the package's :class:`~tusimple_duc.config.TrainConfig`); its keys go through the package's
config schema, and ``fit()`` is :func:`tusimple_duc.engine.run.train` on it: the same run
folder, checkpoints, logs and errors as ``python train.py CONFIG``. Use it as the original
did, from this folder: ``from solver import Solver``.
"""
from tusimple_duc.config import TrainConfig, load_train_config
from tusimple_duc.core.config_parser import ConfigSource, config_from_parser


class Solver:
    """Trains the network a training config describes.

    Attributes
    ----------
    config : the package's :class:`~tusimple_duc.config.TrainConfig` of the given config.
    """

    def __init__(self, config: ConfigSource) -> None:
        self.config = config_from_parser(config, TrainConfig, load_train_config)

    def fit(self):
        """Train (``train.py`` without ``--resume``); returns the engine's ``TrainResult``."""
        from tusimple_duc.engine.run import train

        return train(self.config)

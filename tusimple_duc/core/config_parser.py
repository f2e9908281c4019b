"""The original scripts' ``ConfigParser`` objects as the package's typed configs.

The original's ``Solver(config)`` and ``Tester(config)`` take a ``ConfigParser`` that has read
an INI file; here every key it holds becomes a ``--set``-style override of the package's
config loader, so the same schema checks apply (unknown key, bad value: one-line
``ConfigError``).
"""
from __future__ import annotations

import configparser
from typing import Callable, List, Optional, Sequence, TypeVar, Union

from tusimple_duc.config import TestConfig, TrainConfig

T = TypeVar("T")
#: What the adapters accept as a config: the original's ``ConfigParser``, a path, or the package's config.
ConfigSource = Union[configparser.RawConfigParser, str, TrainConfig, TestConfig]


def parser_overrides(parser: configparser.RawConfigParser) -> List[str]:
    """``section.key=value`` for every key of ``parser`` (in file order)."""
    return [f"{section}.{key}={value}" for section in parser.sections() for key, value in parser.items(section, raw=True)]


def config_from_parser(config: ConfigSource, config_type: type,
                       load: Callable[[Optional[str], Sequence[str]], T]) -> T:
    """``config`` as a ``config_type`` (returned as it is), a path (``load(path)``) or a ``ConfigParser``
    (``load(None, its keys as overrides)``)."""
    if isinstance(config, config_type):
        return config
    if isinstance(config, str):
        return load(config, ())
    return load(None, parser_overrides(config))

"""Files in and out: checkpoints in the released format, ImageNet initialisation, export.

Modules (import them directly; this package imports nothing so that ``io.atomic`` stays
cheap for every other module):

* :mod:`~tusimple_duc.io.atomic` -- atomic writes (shared foundation).
* :mod:`~tusimple_duc.io.names` -- Gluon parameter names <-> ``arg:`` / ``aux:`` checkpoint keys.
* :mod:`~tusimple_duc.io.checkpoint` -- ``load_checkpoint``, ``load_params_file``, ``save_checkpoint``.
* :mod:`~tusimple_duc.io.pretrained` -- ImageNet initialisation (GluonCV ``resnet*_v1s``,
  Gluon model zoo ``resnet*_v1``; MXNet's pre-activation symbol checkpoints are refused).
* :mod:`~tusimple_duc.io.symbol` -- the released-layout MXNet symbol of a network.
* :mod:`~tusimple_duc.io.export` -- ``export_model`` (symbol + params, optional ONNX) and the
  ``symbols/`` files.
* :mod:`~tusimple_duc.io.paramfile`, :mod:`~tusimple_duc.io.matching`,
  :mod:`~tusimple_duc.io.symbol_check` -- reading params files, comparing names and shapes,
  cross-checking a symbol JSON.
"""

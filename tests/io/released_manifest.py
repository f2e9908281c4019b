"""Every array name and shape of the released ``ResNet_DUC_HDC_CityScapes-0020.params``.

Read from ``tests/fixtures/released_param_manifest.json``, a copy of the reference manifest
kept in the repository so that the tests run on any machine: 326 ``arg`` arrays
(65,038,464 parameters) and 212 ``aux`` arrays.
"""
import json
from pathlib import Path

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "released_param_manifest.json"
_MANIFEST = json.loads(MANIFEST_PATH.read_text())

NUM_PARAMS = int(_MANIFEST["num_params"])
ARG = {name: tuple(shape) for name, shape in _MANIFEST["arg"].items()}
AUX = {name: tuple(shape) for name, shape in _MANIFEST["aux"].items()}

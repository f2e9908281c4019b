"""Fixtures of the evaluation tests (the cases themselves live in eval_cases.py)."""
from eval_cases import cityscapes_case, voc_case  # noqa: F401  (fixtures)

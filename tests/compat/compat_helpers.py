"""Constants shared by the compat tests (a uniquely named module: every test folder has a conftest)."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: (rows, cols) of the synthetic images and of the tiny checkpoint's test input.
IMAGE_SIZE = (64, 128)

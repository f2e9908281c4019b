"""Install tusimple-duc: ``pip install -e ".[cpu,test]"`` (CPU) or ``pip install -e ".[gpu]"`` (CUDA 11.2).

MXNet itself is an extra because ``mxnet`` and ``mxnet-cu112`` install the same
module and must not be installed together.
"""
from setuptools import find_packages, setup

CORE = [
    "numpy==1.23.5",
    "gluoncv==0.10.5.post0",
    "opencv-python==4.8.1.78",
    "pydensecrf2",
    "matplotlib<3.8",
    "Pillow",
    "tqdm",
    "onnx<1.16",
    "onnxruntime<1.20",
]

# mxnet-cu112 replaces mxnet; the CUDA 11.2-compatible runtime comes as wheels that
# tusimple_duc.runtime preloads before importing mxnet (see README, "GPUs").
GPU = [
    "mxnet-cu112==1.9.1",
    "nvidia-cuda-runtime-cu11",
    "nvidia-cublas-cu11",
    "nvidia-cudnn-cu11<9",
    "nvidia-cufft-cu11",
    "nvidia-curand-cu11",
    "nvidia-cusolver-cu11",
    "nvidia-cusparse-cu11",
    "nvidia-cuda-nvrtc-cu11",
    "nvidia-nccl-cu11",
    "nvidia-nvtx-cu11",
]

setup(
    name="tusimple-duc",
    version="0.1.0",
    description="DUC + HDC semantic segmentation (Wang et al., WACV 2018) in MXNet/Gluon",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["tusimple_duc", "tusimple_duc.*", "experiments", "experiments.*"]),
    install_requires=CORE,
    extras_require={
        "cpu": ["mxnet==1.9.1"],
        # independent references of the tests (official evaluator, sklearn), the claims' statistics
        # and the OpenVINO backend, which the tests run
        "test": ["pytest", "scikit-learn", "cityscapesscripts==2.3.0", "scipy<1.11", "openvino==2026.4.1"],
        "claims": ["scipy<1.11"],
        "gpu": GPU,
        "bench": ["torch==2.13.0"],
        # [inference] backend = openvino (resolves with numpy 1.23.5; NNCF does not: no OpenVINO int8)
        "openvino": ["openvino==2026.4.1"],
    },
)

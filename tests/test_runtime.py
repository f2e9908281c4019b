"""Process set-up: thread count and locating the CUDA 11 wheels' libraries."""
import os

from tusimple_duc import runtime


def test_threads_respect_user_setting():
    env = {"OMP_NUM_THREADS": "3"}
    assert runtime.configure_threads(env) == 3 and env["OMP_NUM_THREADS"] == "3"


def test_threads_default_to_physical_cores():
    env = {}
    count = runtime.configure_threads(env)
    assert count == runtime.physical_core_count() >= 1
    assert count <= len(os.sched_getaffinity(0))


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()


def test_cuda_library_discovery_and_order(tmp_path):
    site = tmp_path / "site-packages"
    for rel in [
        "nvidia/cudnn/lib/libcudnn.so.8",
        "nvidia/cudnn/lib/libcudnn_ops_infer.so.8",
        "nvidia/cublas/lib/libcublas.so.11",
        "nvidia/cublas/lib/libcublasLt.so.11",
        "nvidia/cuda_runtime/lib/libcudart.so.11.0",
        "nvidia/cuda_nvrtc/lib/libnvrtc.so.11.2",
        "nvidia/cuda_nvrtc/lib/libnvrtc-builtins.so.11.2",
        "nvidia/nccl/lib/libnccl.so.2",
        "nvidia/nvtx/lib/libnvToolsExt.so.1",
        "nvidia/cufft/lib/libcufft.so.10",
        "nvidia/cufft/lib/libcufftw.so.10",
        "nvidia/curand/lib/libcurand.so.10",
        "nvidia/cusolver/lib/libcusolver.so.11",
        "nvidia/cusolver/lib/libcusolverMg.so.11",
        "unrelated/lib/libfoo.so",
    ]:
        _touch(str(site / rel))
    dirs = runtime.find_cuda_library_dirs([str(site), str(tmp_path / "missing")])
    assert [os.path.relpath(d, site) for d in dirs] == sorted(
        f"nvidia/{n}/lib" for n in
        ["cudnn", "cublas", "cuda_runtime", "cuda_nvrtc", "nccl", "nvtx", "cufft", "curand", "cusolver"]
    )
    names = [os.path.basename(p) for p in runtime.cuda_libraries_to_preload(dirs)]
    assert names == [
        "libnvToolsExt.so.1", "libcudart.so.11.0", "libnvrtc.so.11.2", "libnvrtc-builtins.so.11.2",
        "libcublasLt.so.11", "libcublas.so.11", "libcufft.so.10", "libcurand.so.10",
        "libcusolver.so.11", "libcudnn_ops_infer.so.8", "libcudnn.so.8", "libnccl.so.2",
    ]


def test_no_preload_without_wheels_or_when_disabled():
    assert runtime.preload_cuda_libraries({"TUSIMPLE_DUC_NO_CUDA_PRELOAD": "1"}) == []

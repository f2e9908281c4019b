"""tusimple_duc: DUC and HDC semantic segmentation (Wang et al., WACV 2018) in MXNet/Gluon."""
from tusimple_duc import runtime as _runtime

_runtime.configure_threads()
_runtime.preload_cuda_libraries()

__version__ = "0.1.0"

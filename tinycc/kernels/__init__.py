"""Integer kernels as TVM tensor expressions, and their schedules.

Each builder returns a TIR PrimFunc over int8/int32 buffers whose arithmetic is TFLite's.
"""

from .conv import conv2d, fully_connected  # noqa: F401
from .elementwise import add  # noqa: F401
from .binary import binary  # noqa: F401
from .data import gather  # noqa: F401
from .lut import lut  # noqa: F401
from .reduce import mean, reduce_max  # noqa: F401
from .gemm import conv2d_gemm, fully_connected_gemm  # noqa: F401
from .depthwise import depthwise_gemm  # noqa: F401
from . import first_layer  # noqa: F401
from .fixedpoint import Requant, requantize, rounding_constants, rounding_divide_by_pot, srdhm  # noqa: F401
from .quantize import dequantize_lut, quantize  # noqa: F401
from .pool import average_pool, max_pool  # noqa: F401
from .softmax import softmax_fixed_point, softmax_litert  # noqa: F401

"""jaxpinv: a differentiable, batched Moore–Penrose pseudo-inverse for JAX.

``pinv`` and ``matrix_rank`` follow ``torch.linalg.pinv`` / ``torch.linalg.matrix_rank``
(``atol``, ``rtol``, ``hermitian``, array tolerances); ``pinverse`` is
``torch.pinverse``; ``lstsq`` is the minimum-norm least-squares solution with
the same cutoff and stable derivatives; ``damped_pinv`` is the Tikhonov
(ridge) pseudo-inverse, differentiable in the damping. All are pure functions that compose
with ``jit``, ``vmap``, ``grad``, ``jacfwd``/``jacrev``, ``hessian`` and sharded
``jit``.
"""

from jaxpinv._damped import damped_pinv
from jaxpinv._lstsq import LstsqResult, lstsq, lstsq_full
from jaxpinv._pinv import matrix_rank, pinv, pinverse
from jaxpinv._types import ArrayLike, Damping, Tolerance

__version__ = "0.1.0"

__all__ = [
    "ArrayLike",
    "Damping",
    "LstsqResult",
    "Tolerance",
    "damped_pinv",
    "lstsq",
    "lstsq_full",
    "matrix_rank",
    "pinv",
    "pinverse",
    "__version__",
]

"""Forward accuracy of the two paths (``method="qr"`` and ``"svd"``) and of ``jnp.linalg.pinv``, against exact pseudo-inverses.

    python benchmarks/accuracy.py           # full run (about a minute)
    python benchmarks/accuracy.py --quick   # seconds; CI's smoke test

Inputs are ``A = Q diag(s) V^T`` with ``Q`` a random choice of columns of a
Hadamard matrix over its norm (rows with random signs), ``V`` a Hadamard
matrix over its norm (columns with random signs) and ``s`` powers of two, so
that ``A`` and ``pinv(A) = V diag(1/s) Q^T`` are exact in float32 and float64:
the reference carries none of the ``eps * cond`` a computed pseudo-inverse
(NumPy's, say, which runs the same LAPACK SVD as ``method="svd"``) would
bring. The error is ``max |P - P_ref| / max |P_ref|``, the median over draws
(10 matrices; 2 batches). The path column is what ``method="qr"`` took (the
QR path at any size; ``method="auto"`` compiles it in from 64 x 64 on).
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)  # float64 cases; float32 ones pass dtypes explicitly

import jax.numpy as jnp
import numpy as np
import scipy.linalg

import jaxpinv
from jaxpinv.internal import path_taken

SPECTRA = {
    "(1, …, 1, 2⁻¹⁰)": lambda k: np.where(np.arange(k) == k - 1, 2.0**-10, 1.0),
    "2⁰ … 2⁻¹⁰ (log)": lambda k: 2.0 ** -np.round(np.linspace(0, 10, k)),
    "half 1, half 2⁻⁷": lambda k: np.where(np.arange(k) < k // 2, 1.0, 2.0**-7),
}


def exact(rng: np.random.Generator, m: int, n: int, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, pinv(A))`` for a tall ``m x n`` ``A`` with singular values ``s``, both exact (``m``, ``n`` powers of 4)."""
    q = scipy.linalg.hadamard(m) / np.sqrt(m)
    q = q[:, rng.choice(m, n, replace=False)] * rng.choice([-1.0, 1.0], (m, 1))
    v = scipy.linalg.hadamard(n) / np.sqrt(n) * rng.choice([-1.0, 1.0], (1, n))
    return (q * s) @ v.T, (v / s) @ q.T


def case(dtype: type, batch: int, m: int, n: int, spectrum: str, draws: int) -> dict[str, float | str]:
    """Median errors of the three pseudo-inverses over ``draws`` inputs, and the path ``"qr"`` took."""
    errors: dict[str, list[float]] = {"qr": [], "svd": [], "jnp": []}
    path = ""
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        pairs = [exact(rng, max(m, n), min(m, n), SPECTRA[spectrum](min(m, n))) for _ in range(batch)]
        a, ref = np.stack([x for x, _ in pairs]), np.stack([p for _, p in pairs])
        if n > m:
            a, ref = np.swapaxes(a, -1, -2), np.swapaxes(ref, -1, -2)
        if batch == 1:
            a, ref = a[0], ref[0]
        assert np.array_equal(a.astype(dtype).astype(np.float64), a)  # exact in the dtype
        x = jnp.asarray(a, dtype)
        path = path_taken(x, method="qr")
        results = {
            "qr": jaxpinv.pinv(x, method="qr"),
            "svd": jaxpinv.pinv(x, method="svd"),
            "jnp": jnp.linalg.pinv(x, rtol=0.0),
        }
        for name, p in results.items():
            errors[name].append(float(np.max(np.abs(np.asarray(p, np.float64) - ref)) / np.max(np.abs(ref))))
    out: dict[str, float | str] = {name: float(np.median(e)) for name, e in errors.items()}
    out["path"] = path
    return out


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    shapes = (
        [(1, 16, 16), (8, 16, 16)]
        if quick
        else [(1, 64, 64), (1, 256, 256), (1, 1024, 64), (1, 64, 1024), (256, 16, 16)]
    )
    draws = (2, 1) if quick else (10, 2)
    print('| case | spectrum | path | `method="qr"` | `method="svd"` | jnp | qr / svd |')
    print("|---|---|---|---|---|---|---|")
    for dtype in (np.float32, np.float64):
        for batch, m, n in shapes:
            for spectrum in SPECTRA:
                r = case(dtype, batch, m, n, spectrum, draws[batch > 1])
                name = f"{batch}x{m}x{n}" if batch > 1 else f"{m}x{n}"
                ratio = float(r["qr"]) / float(r["svd"])
                print(
                    f"| {name} {np.dtype(dtype).name} | {spectrum} | {r['path']} | {r['qr']:.1e} | "
                    f"{r['svd']:.1e} | {r['jnp']:.1e} | {ratio:.2f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

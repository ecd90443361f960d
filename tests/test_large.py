"""Large matrices compile and run: a regression guard for an XLA CPU crash.

Forming the Hermitian matrix from the lower triangle with ``jnp.where`` over
iota masks made XLA's CPU compiler segfault for n >= 1024 (jax 0.10.2). A
segfault would kill pytest itself, so the check runs in a subprocess.
"""

from __future__ import annotations

import textwrap

import pytest
from helpers import run_python

# Slow: a 1024 x 1024 case in a subprocess; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_hermitian_1024_forward_and_derivative_in_subprocess():
    # A Hermitian indefinite 1024 x 1024 matrix with known eigenvectors and
    # condition 100, so the float64 reference is exact (no inversion) and the
    # tolerance follows from float32: rounding the input moves the inverse by
    # ~eps * cond, the eigensolver's backward error by a few eps * cond more
    # (measured 0.9-2.1 eps * cond forward, 0.5-1.0 for the derivative); we
    # allow 10 eps * cond.
    script = textwrap.dedent(
        """
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp, numpy as np, jaxpinv
        n, cond = 1024, 100.0
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        d = np.logspace(0, -np.log10(cond), n) * np.where(np.arange(n) % 2, 1.0, -1.0)
        for dtype in (np.float32, np.complex64):
            u = q if dtype == np.float32 else np.exp(1j * rng.uniform(0, 6.3, n))[:, None] * q
            h = ((u * d) @ np.conj(u.T)).astype(dtype)
            ref = (u / d) @ np.conj(u.T)  # h^-1 = pinv(h), exactly, in float64
            tol = 10 * np.finfo(dtype).eps * cond
            p = np.asarray(jaxpinv.pinv(h, hermitian=True))
            err = np.abs(p - ref).max() / np.abs(ref).max()
            assert err < tol, (dtype, err, tol)
            # Full rank: d pinv = -P dH P along a Hermitian direction.
            e = rng.standard_normal((n, n)).astype(dtype)
            e = (e + np.conj(e.T)) / 2
            _, dp = jax.jvp(lambda m: jaxpinv.pinv(m, hermitian=True), (jnp.asarray(h),), (jnp.asarray(e),))
            dref = -ref @ e @ ref
            derr = np.abs(np.asarray(dp) - dref).max() / np.abs(dref).max()
            assert derr < tol, (dtype, derr, tol)
            g = jax.grad(lambda m: jnp.real(jnp.sum(jaxpinv.pinv(m, hermitian=True))))(jnp.asarray(h))
            assert np.isfinite(np.asarray(g)).all()  # reverse mode compiles at n = 1024 too
        print("ok")
        """
    )
    out = run_python(["-c", script], timeout=280)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert "ok" in out.stdout

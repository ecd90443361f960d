"""Large matrices compile and run: a regression guard for an XLA CPU crash.

Forming the Hermitian matrix from the lower triangle with ``jnp.where`` over
iota masks made XLA's CPU compiler segfault for n >= 1024 (jax 0.10.2). A
segfault would kill pytest itself, so the check runs in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.timeout(300)
def test_hermitian_1024_forward_and_gradient_in_subprocess():
    script = textwrap.dedent(
        """
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp, numpy as np, jaxpinv
        rng = np.random.default_rng(0)
        for dtype in (np.float32, np.complex64):
            x = rng.standard_normal((1024, 1024))
            if dtype == np.complex64:
                x = x + 1j * rng.standard_normal((1024, 1024))
            h = (x + np.conj(x.T)).astype(dtype)
            p = np.asarray(jaxpinv.pinv(h, hermitian=True))
            ref = np.linalg.pinv(h.astype(np.complex128), hermitian=True)
            err = np.abs(p - ref).max() / np.abs(ref).max()
            assert err < 1e-2, err  # float32 with cond up to ~1e3
            g = jax.grad(lambda m: jnp.real(jnp.sum(jaxpinv.pinv(m, hermitian=True))))(jnp.asarray(h))
            assert np.isfinite(np.asarray(g)).all()
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert "ok" in out.stdout

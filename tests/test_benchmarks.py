"""The benchmark script keeps working: ``benchmarks/bench.py --quick`` runs and prints its tables.

Nothing about time is asserted (timings are not tests); only that every table
and every cell is produced, and that each accuracy cell is small.
"""

from __future__ import annotations

import re

import pytest
from helpers import REPO, run_python

# Slow: the benchmarks' quick mode in subprocesses; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_bench_quick_runs(tmp_path):
    out = tmp_path / "bench.md"
    proc = run_python([str(REPO / "benchmarks" / "bench.py"), "--quick", "--out", str(out)], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    for heading in ("**Forward**", "**Gradient**", "**JVP, compile time, residuals**", "**lstsq**", "**Accuracy**"):
        assert heading in text
    rows = [line for line in text.splitlines() if line.startswith("| 64x64 float32")]
    assert len(rows) == 5  # one row per table
    assert rows[0].split("|")[2].strip() == "qr"  # the path column: full rank, the QR path
    assert [line for line in text.splitlines() if line.startswith("| 32x32 half float64")][0].split("|")[
        2
    ].strip() == "svd"
    accuracy = rows[-1].split("|")[2:-1]
    assert all(float(cell) < 1e-3 for cell in accuracy), rows[-1]
    assert not re.search(r"\bnan\b", text)
    assert "**vmap**" in text
    vmap_rows = [line for line in text.splitlines() if line.startswith("| 16x16 complex64")]
    assert len(vmap_rows) == 6  # the batched case also has a vmap row


@pytest.mark.timeout(300)
def test_bench_lstsq_quick_runs():
    proc = run_python([str(REPO / "benchmarks" / "bench_lstsq.py"), "--quick"], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 20x20")]
    assert len(rows) == 1 and "nan" not in rows[0]


@pytest.mark.timeout(300)
def test_accuracy_quick_runs():
    proc = run_python([str(REPO / "benchmarks" / "accuracy.py"), "--quick"], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 16x16") or line.startswith("| 8x16x16")]
    assert len(rows) == 12 and "nan" not in proc.stdout
    assert all(row.split("|")[3].strip() == "qr" for row in rows)  # full rank, clear of the cutoff: the QR path


@pytest.mark.timeout(300)
def test_bench_latency_quick_runs():
    proc = run_python([str(REPO / "benchmarks" / "bench.py"), "--latency", "--quick"], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "**Compile time**" in proc.stdout and "**First call**" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| pinv") or line.startswith("| lstsq")]
    assert len(rows) == 10 + 5  # compile (fwd and grad of five functions), first call (five)
    jnp_rows = [row for row in rows if row.split("|")[1].strip().endswith("jnp")]
    assert all("(1.00×)" in row for row in jnp_rows)  # each peer row is its own reference
    assert "nan" not in proc.stdout


@pytest.mark.timeout(300)
def test_bench_broadcast_quick_runs():
    proc = run_python([str(REPO / "benchmarks" / "bench.py"), "--broadcast", "--quick"], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1].split("(")[0] for row in rows] == ["pinv", "damped_pinv", "lstsq"]
    assert all(len(row.split("|")) == 8 for row in rows) and "nan" not in proc.stdout


@pytest.mark.timeout(300)
def test_bench_mixed_quick_runs():
    proc = run_python([str(REPO / "benchmarks" / "bench.py"), "--mixed", "--quick"], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in proc.stdout.splitlines()]
    rows = [row for row in rows if row and row[0] in ("pinv", "lstsq", "grad of vmapped lstsq loss")]
    assert len(rows) == 12 and "nan" not in proc.stdout
    # a batch of 8 splits off one member: 0 and 1 deficient take the QR path, 2 and 4 the SVD
    assert [row[2] for row in rows[:4]] == ["qr", "qr+svd", "svd", "svd"]


@pytest.mark.timeout(300)
def test_bench_reach_quick_runs():
    proc = run_python([str(REPO / "benchmarks" / "bench.py"), "--reach", "--quick"], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in proc.stdout.splitlines()]
    rows = [row for row in rows if row and row[0].isdigit()]
    assert [row[0] for row in rows] == ["8", "64", "128"] and "nan" not in proc.stdout
    # method="auto" below the policy's 64^3 runs the SVD; method="qr" takes the QR path at every size
    assert [row[2] for row in rows] == ["svd / qr", "qr / qr", "qr / qr"]


@pytest.mark.timeout(300)
def test_bench_hermitian_quick_runs():
    proc = run_python([str(REPO / "benchmarks" / "bench.py"), "--hermitian", "--quick"], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in proc.stdout.splitlines()]
    rows = [row for row in rows if row and row[0].isdigit()]
    # 64 x 64 positive definite, well conditioned: method="auto" takes the Cholesky path
    assert [row[:3] for row in rows] == [["64", "float32", "cholesky"]] and "nan" not in proc.stdout


@pytest.mark.timeout(300)
def test_bench_lineax_quick_runs():
    proc = run_python([str(REPO / "benchmarks" / "bench_lineax.py"), "--quick"], cwd=REPO, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 16x16") or line.startswith("| 4x16x16")]
    assert len(rows) == 4 and "nan" not in proc.stdout  # lineax is optional: without it, no lineax columns

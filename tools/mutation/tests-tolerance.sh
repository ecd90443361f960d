#!/usr/bin/env bash
# The tests cosmic-ray runs against each mutant of _tolerance.py/_validate.py:
# both x64 configurations (host tolerances round differently without x64).
set -e
python -m pytest -x -q -p no:cacheprovider -p no:xdist tests/test_semantics.py tests/test_errors.py \
    tests/test_dtypes.py tests/test_parity_torch.py tests/test_lstsq.py
JAXPINV_TEST_X64=0 python -m pytest -x -q -p no:cacheprovider -p no:xdist -m "not x64 and not slow" \
    tests/test_semantics.py tests/test_errors.py tests/test_dtypes.py tests/test_lstsq.py

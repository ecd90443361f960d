#!/usr/bin/env bash
# The tests cosmic-ray runs against each mutant of _tolerance.py/_validate.py:
# both x64 configurations (host tolerances round differently without x64).
# lstsq's derivative tests are left out (they exercise no tolerance code
# that the others do not).
set -e
python -m pytest -x -q -p no:cacheprovider -n 2 tests/test_semantics.py tests/test_errors.py tests/test_dtypes.py \
    tests/test_parity_torch.py tests/test_lstsq.py -k "not check_grads and not jacobians and not gradient_finite"
JAXPINV_TEST_X64=0 python -m pytest -x -q -p no:cacheprovider -n 2 -m "not x64 and not slow" \
    tests/test_semantics.py tests/test_errors.py tests/test_dtypes.py tests/test_lstsq.py

#!/usr/bin/env bash
# The tests cosmic-ray runs against each mutant of the derivative rules.
set -e
python -m pytest -x -q -p no:cacheprovider -n 2 tests/test_special_matrices.py tests/test_derivatives.py \
    tests/test_damped.py tests/test_lstsq.py tests/test_vmap_reverse.py

#!/usr/bin/env bash
# The tests cosmic-ray runs against each mutant of the derivative rules: closed
# forms and torch autograd at special matrices first (fast), then central
# differences (check_grads, orders 1 and 2) of pinv, lstsq and damped_pinv.
set -e
python -m pytest -x -q -p no:cacheprovider -n 2 tests/test_special_matrices.py tests/test_derivatives.py \
    tests/test_lstsq.py tests/test_damped.py \
    -k "special or closed or torch or check_grads or hessian or naive or jacobians or jvp or transforms_agree"

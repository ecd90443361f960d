"""Narrow a cosmic-ray session to the mutants worth running (see README, "Mutation testing").

cosmic-ray proposes every operator swap (``*`` -> ``>>``, ``+`` -> ``|``, ...);
most only raise a TypeError at trace time. This keeps the swaps a plausible
bug makes -- a boundary (``>`` -> ``>=``), a sign, a constant, a flipped
condition, ``&``/``|`` on masks -- in the functions named on the command line
(default: all), and marks the rest skipped so ``cosmic-ray exec`` leaves them.
``--sample N`` keeps a seeded random sample of N of those (for the derivative
rules, whose full set takes hours).

    python tools/mutation/choose.py SESSION.sqlite [--functions f g ...] [--sample N]
"""

from __future__ import annotations

import argparse
import random
import re

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult

PLAUSIBLE = re.compile(
    r"core/(NumberReplacer|AddNot|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd"
    r"|ReplaceComparisonOperator_(Gt_GtE|GtE_Gt|Lt_LtE|LtE_Lt|Gt_Lt|Lt_Gt|Eq_NotEq|NotEq_Eq|Is_IsNot|IsNot_Is)"
    r"|ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|BitAnd_BitOr|BitOr_BitAnd|Pow_Mul)"
    r"|ReplaceUnaryOperator_Delete_(USub|Invert|Not))$"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("session")
    parser.add_argument("--functions", nargs="*", default=None)
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with use_db(args.session, WorkDB.Mode.open) as db:
        items = list(db.pending_work_items)
        keep = [
            item
            for item in items
            if all(PLAUSIBLE.match(m.operator_name) for m in item.mutations)
            and (args.functions is None or all(m.definition_name in args.functions for m in item.mutations))
        ]
        if args.sample is not None and len(keep) > args.sample:
            keep = random.Random(args.seed).sample(keep, args.sample)
        chosen = {item.job_id for item in keep}
        for item in items:
            if item.job_id not in chosen:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
        print(f"{len(chosen)} of {len(items)} mutants selected")


if __name__ == "__main__":
    main()

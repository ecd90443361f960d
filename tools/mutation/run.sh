#!/usr/bin/env bash
# Mutation testing (cosmic-ray), not part of CI (it takes an hour or more on 2 cores).
#
#   pip install cosmic-ray && bash tools/mutation/run.sh [tolerance|rules] [SAMPLE]
#
# Works on a throwaway clone (cosmic-ray edits the sources in place), keeps the
# plausible mutants (tools/mutation/choose.py), runs each against the tests in
# tolerance.toml / rules.toml, and prints the survivors' diffs (cr-report).
# The last run's counts are in the README (Tests); equivalent survivors in equivalent.md.
set -euo pipefail
group="${1:-tolerance}"
sample="${2:-}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${TMPDIR:-/tmp}/jaxpinv-mutation-$group"
rm -rf "$work" && git clone -q "$root" "$work" && cd "$work"
# Same compiled programs across mutants: XLA's persistent cache skips recompiling them.
export JAX_COMPILATION_CACHE_DIR="${TMPDIR:-/tmp}/jaxpinv-mutation-jaxcache"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
case "$group" in
    tolerance) functions=() ;;
    rules) functions=(--functions _pinv_core_jvp _pinv_tangent first_two all_three _complement
                      _lstsq_core_jvp base second third _tangents at_zero none _damped_jvp _damped_with_minv_jvp) ;;
    *) echo "usage: run.sh [tolerance|rules] [SAMPLE]" >&2; exit 2 ;;
esac
cosmic-ray init "tools/mutation/$group.toml" session.sqlite
python tools/mutation/choose.py session.sqlite "${functions[@]}" ${sample:+--sample "$sample"}
cosmic-ray exec "tools/mutation/$group.toml" session.sqlite
cr-report --show-pending session.sqlite | tail -n 5
cr-report --surviving-only session.sqlite > survivors.txt || true
echo "survivors: $work/survivors.txt (session: $work/session.sqlite)"

#!/usr/bin/env bash
# Runs the libFuzzer targets of a LUAFLOW_FUZZ build, each for SECONDS, over a scratch copy of its seed
# corpus (tests/fuzz/corpus/<target>/: the repository's corpus is never written), two at a time (two
# fit this machine's cores). Prints each target's final libFuzzer stats; fails if any target crashed,
# leaked, ran out of memory or timed out, and keeps its reproducer then.
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]      (default: every target)
# LUAFLOW_FUZZ_JOBS: targets at once (2); LUAFLOW_FUZZ_KEEP=1 keeps the scratch directory.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$1
seconds=$2
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_socket_request fuzz_http_request fuzz_workflow_loader fuzz_config fuzz_schedule_strings fuzz_json_lua)
scratch=$(mktemp -d /tmp/luaflow-fuzz-XXXXXX)

run_one() {  # target
    local t=$1 dir="$scratch/$1" dict=()
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp tests/fuzz/corpus/"$t"/* "$dir/corpus/"
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    # -timeout: one input taking longer is a hang; the loader's own load deadline is 2 s.
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "${dict[@]}" "$dir/corpus" >"$dir/log" 2>&1
    echo $? >"$dir/rc"
}

running=0
for t in "${targets[@]}"; do
    [ -x "$build/tests/fuzz/$t" ] || { echo "no $build/tests/fuzz/$t: build with scripts/dev.sh fuzz" >&2; exit 2; }
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "${LUAFLOW_FUZZ_JOBS:-2}" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

failed=0
for t in "${targets[@]}"; do
    dir="$scratch/$t"
    rc=$(cat "$dir/rc")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$dir/log" | tail -1)
    corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$dir/log" | tail -1)
    echo "$t: exit $rc, ${execs:-?} executions in ${seconds}s, ${cov:-cov ?}, ${corpus:-corp ?}"
    if [ "$rc" != 0 ]; then
        failed=1
        echo "---- $t failed; its log ends:"
        tail -60 "$dir/log"
        echo "---- reproducer(s): $(ls "$dir"/artifacts/* 2>/dev/null | tr '\n' ' ')"
    fi
done
if [ "$failed" = 0 ] && [ -z "${LUAFLOW_FUZZ_KEEP:-}" ]; then
    rm -rf "$scratch"
else
    echo "scratch directory kept: $scratch"
fi
exit "$failed"

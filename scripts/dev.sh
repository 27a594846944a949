#!/usr/bin/env bash
# Set up a Debian 12 machine for luaflow, build it, and either run the daemon in the foreground on the
# shipped workflows (state in ./.luaflow) or run the tests.
#   scripts/dev.sh run           build, then luaflowd on ./workflows with state in ./.luaflow
#   scripts/dev.sh test          check the formatting and the layering, build, then the whole test suite
#   scripts/dev.sh test-asan     the same as a Debug build (assertions on, -O1) with ASan and UBSan
#   scripts/dev.sh build-types   build (no tests) as Release and MinSizeRel: warnings are errors in each
#   scripts/dev.sh deb           build the Debian package (Release, prefix /usr) in build-deb: build-deb/*.deb
#   scripts/dev.sh fuzz [SECONDS] build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and run each
#                                for SECONDS (60) over its seed corpus, two at a time; fails on a crash
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config python3 python3-dateutil clang-format
          libluajit-5.1-dev libuv1-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev nlohmann-json3-dev
          libical-dev doctest-dev libh2o-dev libsystemd-dev)
# The real peers the tests start on 127.0.0.1: sshd for ssh hosts, a one-node Slurm (with munge) for
# Slurm hosts; an SMTP server (aiosmtpd) and openssl (its throw-away certificate) for e-mail
# notifications; Prometheus's own text parser, which reads GET /metrics in the tests; systemd-analyze,
# which checks the unit (packaging/); lintian and mmdebstrap (a clean Debian root) for the package.
test_packages=(openssh-server slurmctld slurmd slurm-client munge python3-prometheus-client python3-aiosmtpd
               openssl systemd lintian mmdebstrap)

install_missing() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
}

build() {  # build DIR [cmake args...]; LUAFLOW_BUILD_TYPE picks the type (default RelWithDebInfo),
           # LUAFLOW_INSTALL_PREFIX the prefix (default CMake's, /usr/local)
    local dir=$1; shift
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="${LUAFLOW_BUILD_TYPE:-RelWithDebInfo}" \
        ${LUAFLOW_INSTALL_PREFIX:+-DCMAKE_INSTALL_PREFIX=$LUAFLOW_INSTALL_PREFIX} "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)" ${LUAFLOW_TARGETS:+--target $LUAFLOW_TARGETS}
}

check_format() {
    # The formatting is .clang-format's (STYLE 2.3); a difference fails the build.
    local dirs=()
    for d in common loop daemon scripting stdlib notifiers ctl tests/unit bench; do [ -d "$d" ] && dirs+=("$d"); done
    find "${dirs[@]}" \( -name '*.cpp' -o -name '*.hpp' \) -print0 | xargs -0 clang-format --dry-run --Werror
}

case "${1:-}" in
run)
    install_missing
    build build
    mkdir -p .luaflow
    echo "luaflowd starting; in another shell: export LUAFLOW_SOCKET=$PWD/.luaflow/luaflowd.sock; build/luaflowctl list"
    exec build/luaflowd -w "$PWD/workflows" -s "$PWD/.luaflow" --socket "$PWD/.luaflow/luaflowd.sock"
    ;;
test)
    packages+=("${test_packages[@]}")
    install_missing
    check_format
    # No #include crosses a layer the wrong way (ARCHITECTURE.md).
    python3 scripts/check_layers.py
    build build
    cd build && ctest -j 2 --output-on-failure
    ;;
test-asan)
    packages+=("${test_packages[@]}")
    install_missing
    # Debug keeps the assertions; -O1 (the sanitizers' own advice) runs the suite about twice as fast as
    # -O0, and -g1's line tables are all the sanitizers' stacks need.
    build build-asan -DLUAFLOW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
        -DCMAKE_C_FLAGS_DEBUG="-O1 -g1"
    cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest -j 2 --output-on-failure
    ;;
build-types)
    # test and test-asan build RelWithDebInfo and Debug; these are the other types a packager or user may
    # pick. Each optimises differently, so each may warn differently (GCC 12's -O3 did, common/log.cpp).
    # The programs only: they are what a packager builds, and CI's time is better spent on the tests.
    # LUAFLOW_BUILD_TYPES picks some of them (CI: Release, for its time).
    install_missing
    for type in ${LUAFLOW_BUILD_TYPES:-Release MinSizeRel}; do
        LUAFLOW_TARGETS="luaflowd luaflowctl" build "build-$(echo "$type" | tr '[:upper:]' '[:lower:]')" \
            -DCMAKE_BUILD_TYPE="$type"
    done
    ;;
deb)
    packages+=(dpkg-dev)
    install_missing
    LUAFLOW_BUILD_TYPE=Release LUAFLOW_INSTALL_PREFIX=/usr LUAFLOW_TARGETS="luaflowd luaflowctl luaflow-http luaflow_changelog" \
        build build-deb
    (cd build-deb && cpack -G DEB)
    ;;
fuzz)
    # Debian 12's clang 14 lacks std::source_location (the store uses it): clang 16 is in bookworm.
    packages+=(clang-16 libclang-rt-16-dev)
    install_missing
    # -O1 without NDEBUG: assertions stay on; line tables are all the sanitizers' stacks need, and
    # they halve the build.
    fuzz_flags="-O1 -gline-tables-only"
    CC=clang-16 CXX=clang++-16 LUAFLOW_TARGETS=fuzz_targets build build-fuzz -DLUAFLOW_FUZZ=ON \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$fuzz_flags" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$fuzz_flags"
    tests/fuzz/run_fuzzers.sh build-fuzz "${2:-60}"
    ;;
*)
    echo "usage: scripts/dev.sh run | test | test-asan | build-types | deb | fuzz [SECONDS]" >&2
    exit 2
    ;;
esac

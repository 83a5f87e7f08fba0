#!/usr/bin/env bash
# Installs the system packages the tests and demo need on Debian 12; does nothing when they are present.
set -euo pipefail
need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v timeout >/dev/null 2>&1 || need+=(coreutils)
[ -e /usr/include/pthread.h ] || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
    echo "install-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo (Rust) is required; install it with rustup" >&2
    exit 1
fi

#!/usr/bin/env bash
# Installs the system packages the tests, app tests and demo need on Debian 12; does nothing (and says
# nothing) when they are all present. Each package is checked by a file or command it provides, and the
# missing ones are installed with one apt-get call.
set -euo pipefail
need=()
# have_cmd CMD PKG / have_file PATH PKG: queue PKG unless CMD is on PATH / PATH exists.
have_cmd() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
have_file() { [ -e "$1" ] || need+=("$2"); }

# Build and C tests.
have_cmd gcc gcc
have_cmd g++ g++
have_cmd make make
have_cmd timeout coreutils
have_cmd setsid util-linux
have_file /usr/include/pthread.h libc6-dev
# The portable build (scripts/glibc-sysroot.sh, scripts/check-glibc-versions.sh): Debian 11's glibc is
# fetched with apt-get and checked with objdump; bullseye's archive key comes with debian-archive-keyring.
have_cmd objdump binutils
have_cmd dpkg-deb dpkg
have_file /usr/share/keyrings/debian-archive-bullseye-stable.gpg debian-archive-keyring
# Installation and package tests (scripts/test-install.sh, build-deb.sh): man pages, Depends.
have_cmd man man-db
have_cmd dpkg-shlibdeps dpkg-dev
# The stacks test (scripts/test-stacks.sh): the gdb extension on a live process and a core file.
have_cmd gdb gdb
# The glibc matrix (scripts/glibc-matrix.sh): chroots of other Debian releases, cached as zstd tarballs.
have_cmd debootstrap debootstrap
have_cmd zstd zstd
have_cmd unshare util-linux
have_cmd setpriv util-linux
have_file /usr/share/keyrings/debian-archive-keyring.gpg debian-archive-keyring

# App tests (c-tests/apps): MariaDB server, client and C library, PHP with mysqli/PDO, PyMySQL, gevent.
have_file /usr/sbin/mariadbd mariadb-server
have_file /usr/bin/mariadb-install-db mariadb-server
have_cmd mariadb mariadb-client
have_cmd mariadb-slap mariadb-client
have_cmd mariadb_config libmariadb-dev
have_cmd php php-cli
# php-mysql provides both mysqli and pdo_mysql; its ini file is the cheapest check.
compgen -G '/etc/php/*/mods-available/mysqli.ini' >/dev/null || need+=(php-mysql)
have_file /usr/lib/python3/dist-packages/pymysql/__init__.py python3-pymysql
have_file /usr/lib/python3/dist-packages/gevent/__init__.py python3-gevent
# Do-no-harm suite: ordinary tools run under the shim.
have_cmd curl curl
have_cmd git git
have_cmd nginx nginx-light
have_cmd redis-server redis-server
have_cmd redis-cli redis-tools
have_cmd perl perl
have_cmd tar tar
have_cmd gzip gzip

if [ ${#need[@]} -gt 0 ]; then
    # Duplicates (one package checked by several files) are harmless to apt but noisy in the message.
    mapfile -t need < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')
    echo "install-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run (unattended upgrades, a second checkout) may hold the dpkg lock: wait for it.
    apt_opts=(-o DPkg::Lock::Timeout=600)
    apt-get "${apt_opts[@]}" update -qq
    # policy-rc.d: Debian's maintainer scripts would otherwise start mariadb, nginx and redis as system
    # services; the tests start their own instances on free ports and want nothing listening otherwise.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    rc=0
    apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null || rc=$?
    [ $created_policy -eq 1 ] && rm -f "$policy"
    [ $rc -eq 0 ] || exit $rc
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo (Rust) is required; install it with rustup" >&2
    exit 1
fi

#!/bin/sh
# SPDX-License-Identifier: MIT
# <v4v/v4v.h> from C++: compile v4v_header.cc with g++ -std=c++17 -Wall
# -Wextra -Werror, link it with the built libv4v and run it.  77 (skip)
# without g++.
set -eu
command -v g++ >/dev/null || { echo "SKIP: no g++" >&2; exit 77; }
src=${V4V_SRC:?} bin=${V4V_BIN:?}
out=$(mktemp -d /tmp/v4v-cxx-XXXXXX)
trap 'rm -rf "$out"' EXIT
# A sanitized libv4v (scripts/check's ASan build) needs the program built
# the same way, so that the sanitizer's runtime comes first.
san=
needed=$(readelf -d "$bin/libv4v.so" 2>/dev/null || true)
case $needed in *libasan*) san="$san -fsanitize=address" ;; esac
case $needed in *libubsan*) san="$san -fsanitize=undefined" ;; esac
case $needed in *libtsan*) san="$san -fsanitize=thread" ;; esac
# shellcheck disable=SC2086 # (san: words on purpose)
g++ -std=c++17 -Wall -Wextra -Werror $san -I"$src/include" "$src/tests/cxx/v4v_header.cc" \
	-L"$bin" -lv4v -Wl,-rpath,"$bin" -o "$out/v4v_header"
unset V4V_DOMAIN_FD
msg=$("$out/v4v_header")
[ "$msg" = "no ring (or no listener) at the destination port" ] ||
	{ echo "FAIL: v4v_strerror from C++ said '$msg'" >&2; exit 1; }
echo "ok: <v4v/v4v.h> compiles, links and runs as C++17"

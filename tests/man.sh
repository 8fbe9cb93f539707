#!/bin/bash
# SPDX-License-Identifier: MIT
# The manual: every page renders without a groff warning; every function
# the library exports is in libv4v(3)'s synopsis and, once installed, has
# a page of its own name (`man v4v_socket`).  77 without groff or man.
set -eu
src=${V4V_SRC:?} bin=${V4V_BIN:?}
for t in groff man; do
	command -v "$t" >/dev/null || { echo "SKIP: needs $t" >&2; exit 77; }
done
tmp=$(mktemp -d /tmp/v4v-man-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for page in "$src"/man/*.[1-8]; do
	groff -man -Tutf8 -ww -z "$page" 2>"$tmp/warn" || fail "groff failed on $page"
	[ ! -s "$tmp/warn" ] || fail "$page: $(cat "$tmp/warn")"
	MANWIDTH=80 man -l "$page" >/dev/null 2>"$tmp/warn" || fail "man -l $page"
done

funcs=$(sed -n 's/^[[:space:]]*\(v4v_[a-z_]*\);$/\1/p' "$src/src/lib/libv4v.map")
[ -n "$funcs" ] || fail "no functions in libv4v.map"
for f in $funcs; do
	grep -q "^\.BI* \"[^\"]*[ *]$f(" "$src/man/libv4v.3" || fail "$f is not in libv4v(3)'s synopsis"
done

meson install -C "$bin" --no-rebuild --quiet --destdir "$tmp/root" >"$tmp/log" 2>&1 ||
	fail "meson install: $(tail -n 5 "$tmp/log")"
mandir=$(find "$tmp/root" -type d -name man3 -path '*/man/man3' | head -n 1)
[ -n "$mandir" ] || fail "no man3 directory installed"
# (man -w follows a link page's .so to the page it sources.)
for f in $funcs; do
	[ "$(cat "$mandir/$f.3")" = ".so man3/libv4v.3" ] || fail "$mandir/$f.3 is not a link page"
	got=$(MANPATH=${mandir%/man3} man -w "$f" 2>&1) || fail "man -w $f: $got"
	[ "$got" = "$mandir/$f.3" ] || [ "$got" = "$mandir/libv4v.3" ] || fail "man -w $f gave '$got'"
done
MANPATH=${mandir%/man3} MANWIDTH=80 man v4v_socket 2>/dev/null | grep -q "v4v_strerror" ||
	fail "man v4v_socket does not show libv4v(3)"
echo "ok: every page renders; man v4v_<function> resolves for $(echo "$funcs" | wc -w) functions"

#!/bin/sh
# The server's layering rules (server/README.md "Layout"), checked on the sources and the
# build:
#  1. server/net/ includes only its own headers, common/ and the header-only
#     server/limits.h: nothing of the materializer (mat/ parquet/ delta/ wal/) or the core;
#  2. rn_net's link libraries name no other rn_ library than rn_common (and rn_warnings);
#  3. net_link_check (every object of rn_net, linked with rn_common alone) was built (so it linked);
#  4. Delta maintenance depends on the log core one way: delta.c/delta.h include neither
#     compact.h nor maint.h, compact.c does not include maint.h;
#  5. the daemon does not link the table CLI (no rn_table_main in runnel-server);
#  6. the Delta code (delta.c, checkpoint.c, compact.c, maint.c, and the independent log
#     analyzer log.c) includes no file I/O header (rn_fs.h, dirent.h, fcntl.h, sys/mman.h,
#     sys/stat.h): it goes through the table store.
# usage: layering.sh SOURCE_DIR BUILD_DIR | layering.sh --self-test SOURCE_DIR
set -u
fails=0
fail() { echo "layering: $*" >&2; fails=$((fails + 1)); }

# check_net DIR COMMON_DIR: rule 1 on the .c/.h files of DIR
check_net() {
	for f in "$1"/*.c "$1"/*.h; do
		[ -e "$f" ] || continue
		sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
			while read -r inc; do
				[ "$inc" = "../limits.h" ] && continue
				[ -f "$1/$inc" ] && case "$inc" in */*) ;; *) continue ;; esac
				[ -f "$2/$inc" ] && case "$inc" in */*) ;; *) continue ;; esac
				echo "$f includes \"$inc\": not net/, common/ or ../limits.h"
			done
	done
}

if [ "${1:-}" = "--self-test" ]; then
	src=$2
	t=$(mktemp -d) || exit 1
	trap 'rm -rf "$t"' EXIT
	mkdir "$t/net"
	printf '#include "ok.h"\n#include "rn_err.h"\n#include "../limits.h"\n' >"$t/net/a.c"
	: >"$t/net/ok.h"
	[ -z "$(check_net "$t/net" "$src/common")" ] || { echo "self-test: a clean file flagged" >&2; exit 1; }
	for bad in mat.h ../mat/mat.h wal.h server.h ../server.h delta.h; do
		printf '#include "ok.h"\n#include "%s"\n' "$bad" >"$t/net/b.c"
		[ -n "$(check_net "$t/net" "$src/common")" ] ||
			{ echo "self-test: #include \"$bad\" not flagged" >&2; exit 1; }
	done
	echo "layering self-test: ok"
	exit 0
fi

src=$1
build=$2
out=$(check_net "$src/server/net" "$src/common")
[ -z "$out" ] || fail "$out"

libs=$build/layering/rn_net.libs
if [ ! -f "$libs" ]; then
	fail "$libs missing (configure with RN_TESTS=ON)"
else
	bad=$(grep -o 'rn_[A-Za-z0-9_]*' "$libs" | grep -v -x -e rn_common -e rn_warnings | sort -u)
	[ -z "$bad" ] || fail "rn_net links $(echo $bad) (server/net/CMakeLists.txt)"
fi

# built = linked with rn_common alone (not run: in a cross build it is a foreign binary)
[ -f "$build/server/net/net_link_check" ] ||
	fail "$build/server/net/net_link_check missing: rn_net does not link alone?"

for f in delta.c delta.h; do
	grep -n '#[[:space:]]*include[[:space:]]*"\(compact\|maint\)\.h"' "$src/server/delta/$f" &&
		fail "server/delta/$f includes compact.h or maint.h (delta.c is the core)"
done
grep -n '#[[:space:]]*include[[:space:]]*"maint\.h"' "$src/server/delta/compact.c" &&
	fail "server/delta/compact.c includes maint.h"
# the Delta code reads and writes a table only through the table store (tstore.h), so it
# runs on every backend: no file I/O headers of its own
for f in delta.c checkpoint.c compact.c maint.c log.c; do
	grep -n '#[[:space:]]*include[[:space:]]*[<"]\(rn_fs\.h\|dirent\.h\|fcntl\.h\|sys/mman\.h\|sys/stat\.h\)[>"]' \
		"$src/server/delta/$f" &&
		fail "server/delta/$f does file I/O itself (use the table store, tstore.h)"
done

srv=$build/server/runnel-server
if [ -f "$srv" ]; then
	if nm "$srv" 2>/dev/null | grep -q ' [Tt] rn_table_main$'; then
		fail "runnel-server links the table CLI (rn_table_main)"
	fi
else
	fail "$srv missing"
fi

[ "$fails" -eq 0 ] && echo "layering: ok"
[ "$fails" -eq 0 ]

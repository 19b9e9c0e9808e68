# Shell functions that build third-party PostgreSQL extensions (the vendored sources of
# ../shared/vendor/, see its README.md) into the private PostgreSQL install of a test run or a
# benchmark (test/pg_private.sh), sourced by test/run and the benchmarks.
#
#   vendor_resolve SRC              before pg_private_reexec_as_postgres: find ../shared beside the
#                                   checkout SRC (or $FCT_SHARED) and export FCT_SHARED, CITUS_SRC,
#                                   PGVECTOR_SRC as absolute paths, so that the re-executed copy
#                                   under /tmp (which has no ../shared) still finds them
#   vendor_tarball NAME             print the source of NAME (citus | pgvector), or return 1
#   vendor_install NAME WORK        build NAME once per machine (cached), install it into WORK/inst;
#                                   0: installed; 2: skipped (source absent; the reason is printed
#                                   and left in VENDOR_SKIP_REASON); 1: the build failed
#
# The source is $CITUS_SRC / $PGVECTOR_SRC when set (a tarball or an unpacked source directory),
# otherwise the tarball in $FCT_SHARED/vendor/.  Builds are cached in $FCT_VENDOR_CACHE (default
# /var/tmp/fct-vendor), one directory per NAME, sha256 of the source and server version, holding
# the DESTDIR tree of `make install`; a second run on the same machine copies it and builds
# nothing.  Two runs that need the same build at once wait on a lock: one builds, the other copies.
# pgvector's Makefile compiles with -march=native: its cached build is for this machine's CPU only
# (the cache is per machine; never copy it elsewhere).

VENDOR_CITUS_TARBALL=citus-13.2.2.tar.gz
VENDOR_PGVECTOR_TARBALL=pgvector-0.8.6.tar.gz

vendor_resolve() {
	local src=$1 v
	if [ -z "${FCT_SHARED:-}" ] && [ -d "$src/../shared" ]; then
		FCT_SHARED=$(cd "$src/../shared" && pwd)
	fi
	[ -z "${FCT_SHARED:-}" ] || export FCT_SHARED
	for v in CITUS_SRC PGVECTOR_SRC; do
		if [ -n "${!v:-}" ] && [ -e "${!v}" ]; then
			printf -v "$v" '%s' "$(cd "$(dirname "${!v}")" && pwd)/$(basename "${!v}")"
			export "${v?}"
		fi
	done
}

vendor_tarball() {
	local name=$1 var file
	case $name in
		citus) var=CITUS_SRC file=$VENDOR_CITUS_TARBALL ;;
		pgvector) var=PGVECTOR_SRC file=$VENDOR_PGVECTOR_TARBALL ;;
		*) echo "vendor_tarball: unknown source $name" >&2; return 1 ;;
	esac
	if [ -n "${!var:-}" ]; then
		[ -r "${!var}" ] && { echo "${!var}"; return 0; }
		return 1
	fi
	if [ -n "${FCT_SHARED:-}" ] && [ -r "$FCT_SHARED/vendor/$file" ]; then
		echo "$FCT_SHARED/vendor/$file"
		return 0
	fi
	return 1
}

# The pg_config of the server itself, not the private copy's (whose paths point into WORK/inst):
# the cached DESTDIR tree has the server's own layout, as pg_private_install's has.
vendor_pg_config() {
	local d
	local IFS=:
	for d in $PATH; do
		[ -n "${PG_BIN:-}" ] && [ "$d" = "$PG_BIN" ] && continue
		[ -x "$d/pg_config" ] && { echo "$d/pg_config"; return 0; }
	done
	return 1
}

# sha256 of a tarball, or of every file of a source directory (names and contents).
vendor_source_key() {
	local src=$1
	if [ -d "$src" ]; then
		(cd "$src" && find . -type f ! -name '*.o' ! -name '*.so' ! -name '*.bc' -print0 | LC_ALL=C sort -z |
			xargs -0 sha256sum | sha256sum | cut -c1-64)
	else
		sha256sum "$src" | cut -c1-64
	fi
}

# PostgreSQL 15.20 (and other recent 15.x minors) declares have_createdb_privilege() in
# commands/dbcommands.h; Citus 13.2.2's pg_version_compat.h defines a static copy for 15, and the
# two clash.  When the server declares it, the one-line guard renames the static copy out of the
# way (it is then unused), so the server's function is called; older minors keep the copy.
vendor_patch_citus() {
	local dir=$1 pgc=$2
	local h=$dir/src/include/pg_version_compat.h
	if grep -q 'have_createdb_privilege' "$("$pgc" --includedir-server)/commands/dbcommands.h" 2>/dev/null; then
		sed -i 's/^have_createdb_privilege(void)$/citus_static_have_createdb_privilege_unused(void)/' "$h"
	fi
}

# with_llvm=no: no LLVM bitcode for the JIT's inlining (it doubles the build time; the tests
# and benchmarks do not run with jit inlining of these extensions).
vendor_build() {	# vendor_build NAME SRCDIR DESTDIR PG_CONFIG LOG
	local name=$1 dir=$2 dest=$3 pgc=$4 log=$5
	case $name in
		citus)
			vendor_patch_citus "$dir" "$pgc"
			(cd "$dir" && PG_CONFIG=$pgc ./configure --without-libcurl &&
				make -j2 with_llvm=no && make install with_llvm=no DESTDIR="$dest") >"$log" 2>&1
			;;
		pgvector)
			(cd "$dir" && make -j2 PG_CONFIG="$pgc" with_llvm=no &&
				make install PG_CONFIG="$pgc" with_llvm=no DESTDIR="$dest") >"$log" 2>&1
			;;
	esac
}

vendor_install() {
	local name=$1 work=$2
	local src pgc key cache entry tmp start rc
	VENDOR_SKIP_REASON=
	if ! src=$(vendor_tarball "$name"); then
		local var file
		case $name in
			citus) var=CITUS_SRC file=$VENDOR_CITUS_TARBALL ;;
			*) var=PGVECTOR_SRC file=$VENDOR_PGVECTOR_TARBALL ;;
		esac
		if [ -n "${!var:-}" ]; then
			VENDOR_SKIP_REASON="$name source not readable at $var=${!var}"
		else
			VENDOR_SKIP_REASON="$name source not found: no ${FCT_SHARED:-../shared}/vendor/$file beside the checkout; set $var=/path/to/$file (or an unpacked source directory) to run these tests"
		fi
		echo "skipped: $VENDOR_SKIP_REASON"
		return 2
	fi
	pgc=$(vendor_pg_config) || { echo "vendor_install: no pg_config on PATH" >&2; return 1; }
	key=$(vendor_source_key "$src")
	cache=${FCT_VENDOR_CACHE:-/var/tmp/fct-vendor}
	if [ ! -d "$cache" ]; then
		mkdir -p "$cache" && chmod 1777 "$cache" 2>/dev/null
	fi
	entry=$cache/$name-${key:0:16}-$("$pgc" --version | tr -c 'A-Za-z0-9.\n' '_')
	# the lock file writable by every user: a build run as root first must not lock out the
	# postgres user's runs (the cache directory is sticky: nobody can replace another's file)
	(umask 000 && : >>"$entry.lock") 2>/dev/null
	(
		flock 9
		[ -f "$entry/done" ] && exit 0
		rm -rf "$entry"
		tmp=$(mktemp -d "$cache/build-$name.XXXXXX") || exit 1
		if [ -d "$src" ]; then
			cp -a "$src" "$tmp/src"
		else
			mkdir "$tmp/src" && tar -C "$tmp/src" --strip-components=1 -xzf "$src"
		fi || { rm -rf "$tmp"; exit 1; }
		echo "building $name from $src (once per machine; cache $entry)"
		start=$(date +%s)
		if ! vendor_build "$name" "$tmp/src" "$tmp/root" "$pgc" "$tmp/build.log"; then
			tail -n 60 "$tmp/build.log"
			echo "vendor_install: building $name failed (full log: $tmp/build.log)" >&2
			exit 1
		fi
		echo "$(($(date +%s) - start))" >"$tmp/build-seconds"
		echo "built $name in $(cat "$tmp/build-seconds") s"
		mkdir "$entry" && mv "$tmp/root" "$tmp/build.log" "$tmp/build-seconds" "$entry/" &&
			chmod -R a+rX "$entry" && touch "$entry/done"
		rc=$?
		rm -rf "$tmp"
		exit $rc
	) 9>"$entry.lock"
	rc=$?
	[ $rc = 0 ] || return 1
	cp -a "$entry/root/." "$work/inst/" || return 1
	return 0
}

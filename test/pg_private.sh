# Shell functions for a throwaway PostgreSQL with fct installed, sourced by test/run, the demo and the
# benchmarks.  Nothing is installed into the system: the server's own files are copied into a private
# prefix (PostgreSQL finds its share and lib directories relative to its binaries), fct is installed
# there with DESTDIR, and the cluster listens only on a Unix socket in the work directory.  So several
# runs can go on at once, and only root's apt-get (test/install-deps) ever touches the system.
#
#   pg_private_reexec_as_postgres SCRIPT ARGS   as root: rerun SCRIPT as postgres from a readable copy
#                                               (FCT_SHARED and the like pass on in the environment)
#   pg_private_install SRC WORK                 build fct in SRC, install into WORK/inst (sets PG_BIN)
#   pg_private_start WORK [CONF_LINE ...]       initdb WORK/data (unless it is one) and start it (sets PGHOST, PGPORT)
#   pg_private_stop WORK                        stop it
#   pg_private_sanitizer SRC WORK               with FCT_SANITIZE=address: find gcc's libasan and set
#                                               FCT_ASAN_PRELOAD and FCT_ASAN_OPTIONS, the environment
#                                               every server starts with (pg_private_start; test/run
#                                               gives it to the TAP tests' nodes)

# PostgreSQL refuses to run as root, and the source tree may sit where the postgres user cannot
# read it: as root, copy the tree to a directory postgres owns and run the script again as postgres.
pg_private_reexec_as_postgres() {
	local src=$1 rel=$2
	shift 2
	[ "$(id -u)" = 0 ] || return 0
	local stage
	stage=$(mktemp -d /tmp/fct-src.XXXXXX)
	tar -C "$src" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./results --exclude=./test/bench/data -cf - . | tar -C "$stage" -xf -
	# ../shared (FCT_SHARED, resolved by vendor_resolve before this) may sit where postgres cannot
	# read; then its vendor/ sources travel with the copy.
	if [ -n "${FCT_SHARED:-}" ] && ! runuser -u postgres -- test -r "$FCT_SHARED/vendor/." 2>/dev/null; then
		# writable, so that the copy's owner can remove it (../shared/vendor is read-only)
		mkdir -p "$stage/.shared" && cp -a "$FCT_SHARED/vendor" "$stage/.shared/" &&
			chmod -R u+w "$stage/.shared" && export FCT_SHARED=$stage/.shared
	fi
	chmod 755 "$stage"
	chown -R postgres:postgres "$stage"
	cd "$stage"
	exec runuser -u postgres -- env FCT_STAGED=1 bash "$stage/$rel" "$@"
}

pg_private_install() {
	local src=$1 work=$2
	local inst=$work/inst bindir sharedir pkglibdir
	bindir=$(pg_config --bindir)
	sharedir=$(pg_config --sharedir)
	pkglibdir=$(pg_config --pkglibdir)
	# a build of another flavour (plain, or with a sanitizer: FCT_SANITIZE) is rebuilt from scratch
	local flavour=${FCT_SANITIZE:-plain}
	if [ "$(cat "$src/.fct-build-flavour" 2>/dev/null)" != "$flavour" ]; then
		make -C "$src" -s clean >/dev/null 2>&1
		echo "$flavour" >"$src/.fct-build-flavour"
	fi
	if ! make -C "$src" -s -j2 FCT_WERROR=-Werror FCT_SANITIZE="${FCT_SANITIZE:-}" >"$work/build.log" 2>&1; then
		cat "$work/build.log"
		echo "build failed" >&2
		return 1
	fi
	for d in "$bindir" "$sharedir" "$pkglibdir"; do
		mkdir -p "$inst$(dirname "$d")"
		[ -d "$inst$d" ] || cp -a "$d" "$inst$d"
	done
	if ! make -C "$src" -s install DESTDIR="$inst" >>"$work/build.log" 2>&1; then
		cat "$work/build.log"
		echo "install failed" >&2
		return 1
	fi
	PG_BIN=$inst$bindir
	PG_REGRESS=$inst$pkglibdir/pgxs/src/test/regress/pg_regress
	PG_PERL_LIB=$inst$pkglibdir/pgxs/src/test/perl
	export PATH="$PG_BIN:$PATH" PG_REGRESS
}

pg_private_start() {
	local work=$1
	shift
	mkdir -p "$work/sock"
	# a data directory already initialised (a benchmark's kept cluster) is started as it is
	if [ ! -f "$work/data/PG_VERSION" ] &&
		! "$PG_BIN/initdb" -D "$work/data" -A trust -E UTF8 --locale=C --no-sync >"$work/initdb.log" 2>&1; then
		cat "$work/initdb.log"
		return 1
	fi
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$work/sock'"
		echo "port = 5432"
		echo "max_worker_processes = 16"
		printf '%s\n' "$@"
	} >>"$work/data/postgresql.conf"
	if ! env ${FCT_ASAN_PRELOAD:+LD_PRELOAD="$FCT_ASAN_PRELOAD" ASAN_OPTIONS="$FCT_ASAN_OPTIONS"} \
		"$PG_BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null; then
		cat "$work/server.log"
		return 1
	fi
	export PGHOST=$work/sock PGPORT=5432 PGDATABASE=postgres
}

pg_private_stop() {
	local work=$1
	if [ -f "$work/data/postmaster.pid" ]; then
		"$PG_BIN/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
}

# AddressSanitizer (FCT_SANITIZE=address, bash test/run --sanitize).  fct is built with
# -fsanitize=address; the server binaries are Debian's, not instrumented, so the runtime is preloaded
# into the server (and into whatever else test/run starts that may start one: prove, pg_ctl), as
# ASan requires it to come first, followed by test/asan_preload.c (built here into WORK), without
# which the uninstrumented binaries hang in glibc's locale locks (that file says why).  Leak
# detection is off (a backend's memory lives in contexts freed wholesale, which LeakSanitizer would
# report by the thousand); the first error aborts the process, so the server log holds the report
# and the postmaster's crash restart makes the test fail too.
pg_private_sanitizer() {	# pg_private_sanitizer SRC WORK
	[ "${FCT_SANITIZE:-}" = address ] || return 0
	local src=$1 work=$2 lib
	lib=$(readlink -f "$(gcc -print-file-name=libasan.so)")
	if [ ! -f "$lib" ]; then
		echo "FCT_SANITIZE=address: gcc's libasan.so not found ($lib); install gcc" >&2
		return 1
	fi
	if ! gcc -shared -fPIC -O2 -fno-builtin -o "$work/asan_preload.so" "$src/test/asan_preload.c" -ldl; then
		echo "FCT_SANITIZE=address: building test/asan_preload.c failed" >&2
		return 1
	fi
	export FCT_ASAN_PRELOAD="$lib:$work/asan_preload.so"
	export FCT_ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:print_summary=1:detect_odr_violation=0
}

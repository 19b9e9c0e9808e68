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
		mkdir -p "$stage/.shared" && cp -a "$FCT_SHARED/vendor" "$stage/.shared/" && export FCT_SHARED=$stage/.shared
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
	if ! make -C "$src" -s -j2 FCT_WERROR=-Werror >"$work/build.log" 2>&1; then
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
	if ! "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null; then
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

# Shell functions for a throwaway Citus cluster on this machine (a coordinator and workers, each a
# PostgreSQL of the private install of test/pg_private.sh with Citus from test/vendor.sh), sourced by
# test/bench/citus/run.  Citus connects to its nodes by host and port, so every node listens on
# 127.0.0.1 (port BASE+i) as well as on a Unix socket in WORK/sock.
#
#   citus_bench_install SRC WORK        build fct and install it with Citus into WORK/inst (sets PG_BIN);
#                                       returns 2 when Citus's source is absent (the reason is printed)
#   citus_bench_start WORK NWORKERS [CONF_LINE ...]
#                                       initdb and start node0 (coordinator) .. nodeN, create citus and
#                                       fct, add the workers; sets PGHOST, PGPORT (the coordinator) and
#                                       CITUS_BENCH_PORTS (every node's port, coordinator first)
#   citus_bench_stop WORK               stop every node

citus_bench_install() {
	local src=$1 work=$2
	pg_private_install "$src" "$work" || return 1
	vendor_install citus "$work"
}

# A free block of ports: the first of NWORKERS+1 ports that nothing listens on.
citus_bench_ports() {
	local n=$1 base p ok
	for base in $(seq $((20000 + ($$ % 200) * 50)) 50 40000); do
		ok=1
		for p in $(seq "$base" $((base + n))); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ok=0; break; fi
		done
		[ $ok = 1 ] && { echo "$base"; return 0; }
	done
	return 1
}

citus_bench_start() {
	local work=$1 nworkers=$2 base i d port
	shift 2
	base=$(citus_bench_ports "$nworkers") || { echo "no free ports" >&2; return 1; }
	mkdir -p "$work/sock"
	CITUS_BENCH_PORTS=
	for i in $(seq 0 "$nworkers"); do
		d=$work/node$i
		port=$((base + i))
		"$PG_BIN/initdb" -D "$d" -A trust -E UTF8 --locale=C --no-sync >"$work/initdb$i.log" 2>&1 ||
			{ cat "$work/initdb$i.log"; return 1; }
		{
			echo "shared_preload_libraries = 'citus,fct'"
			echo "listen_addresses = '127.0.0.1'"
			echo "unix_socket_directories = '$work/sock'"
			echo "port = $port"
			echo "max_connections = 100"
			echo "max_worker_processes = 16"
			echo "max_prepared_transactions = 40"
			echo "citus.shard_replication_factor = 1"
			echo "citus.enable_statistics_collection = off"
			echo "fsync = off"
			printf '%s\n' "$@"
		} >>"$d/postgresql.conf"
		# under bash test/run --sanitize fct.so is built with AddressSanitizer: its runtime is preloaded
		# into every node, as pg_private_start does (without it no node starts)
		env ${FCT_ASAN_PRELOAD:+LD_PRELOAD="$FCT_ASAN_PRELOAD" ASAN_OPTIONS="$FCT_ASAN_OPTIONS"} \
			"$PG_BIN/pg_ctl" -D "$d" -l "$work/node$i.log" -w start >/dev/null || { cat "$work/node$i.log"; return 1; }
		psql -X -q -h "$work/sock" -p "$port" -d postgres -c 'CREATE EXTENSION citus' || return 1
		CITUS_BENCH_PORTS+="${CITUS_BENCH_PORTS:+ }$port"
	done
	export PGHOST=$work/sock PGPORT=$base PGDATABASE=postgres CITUS_BENCH_PORTS
	psql -X -q -At -c "SELECT citus_set_coordinator_host('localhost', $base)" >/dev/null || return 1
	for i in $(seq 1 "$nworkers"); do
		psql -X -q -At -c "SELECT citus_add_node('localhost', $((base + i)))" >/dev/null || return 1
	done
}

citus_bench_stop() {
	local work=$1 d
	for d in "$work"/node*; do
		[ -f "$d/postmaster.pid" ] && "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1
	done
	# test/run --sanitize reads the server logs it is given (FCT_SANITIZER_LOG_DIR) for reports:
	# the nodes' logs go there before this work directory is removed
	if [ -n "${FCT_SANITIZER_LOG_DIR:-}" ]; then
		for d in "$work"/node*.log; do
			[ -f "$d" ] && cp "$d" "$FCT_SANITIZER_LOG_DIR/citus-$(basename "$work")-$(basename "$d")"
		done
	fi
	return 0
}

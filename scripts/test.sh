#!/usr/bin/env bash
# Runs strata's tests against real services, on a fresh machine with Go:
#   1. installs PostgreSQL (Debian packages) and versitygw (an S3-compatible
#      server, built with go install) if they are missing;
#   2. starts throwaway instances of both as a non-root user on free loopback
#      ports, in a temporary directory;
#   3. runs `go test -tags duckdb_arrow ./...` (extra arguments are passed to
#      go test, e.g. scripts/test.sh -run Catalog ./catalog/);
#   4. stops them and removes the directory, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSITYGW_VERSION=v1.8.0
log() { printf '==> %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# --- PostgreSQL binaries -----------------------------------------------------
pg_bindir() {
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
if [ -z "$(pg_bindir)" ] || [ ! -x "$(pg_bindir)/initdb" ]; then
	log "installing PostgreSQL from Debian packages"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(pg_bindir)

# --- versitygw ---------------------------------------------------------------
GOBIN_DIR=$(go env GOBIN)
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH)/bin"
VGW="$GOBIN_DIR/versitygw"
if [ ! -x "$VGW" ]; then
	log "building versitygw $VERSITYGW_VERSION (go install)"
	go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi

# --- a non-root user to run the services ---------------------------------------
WORK=$(mktemp -d /tmp/strata-test.XXXXXX)
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
	SVC_USER=postgres
	if ! id "$SVC_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin strata-test 2>/dev/null || true
		SVC_USER=strata-test
	fi
	chown "$SVC_USER" "$WORK"
	# env -C: the service user may not be allowed into the current directory.
	RUN_AS=(runuser -u "$SVC_USER" -- env -C "$WORK")
fi

PIDS=()
cleanup() {
	set +e
	if [ -n "${PGDATA:-}" ] && [ -f "$PGDATA/postmaster.pid" ]; then
		"${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
	fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# free_port prints a loopback TCP port that nothing listens on.
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

wait_port() { # port name
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	log "$2 did not start listening on 127.0.0.1:$1"
	return 1
}

# --- start PostgreSQL ----------------------------------------------------------
PGPORT=$(free_port)
PGDATA="$WORK/pg"
log "starting PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT"
"${RUN_AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U strata --auth=trust --no-sync -E UTF8 >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log"; exit 1; }
"${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg.log" -w -o \
	"-h 127.0.0.1 -p $PGPORT -k $WORK -c fsync=off -c max_connections=300" start >/dev/null ||
	{ cat "$WORK/pg.log"; exit 1; }
"${RUN_AS[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U strata strata_test

# --- start versitygw -------------------------------------------------------------
S3PORT=$(free_port)
S3ROOT="$WORK/s3"
"${RUN_AS[@]}" mkdir -p "$S3ROOT/strata-test"
# A copy the service user can execute ($GOPATH may be under /root).
install -m 0755 "$VGW" "$WORK/versitygw"
export AWS_ACCESS_KEY_ID=strata-test AWS_SECRET_ACCESS_KEY=strata-test-secret AWS_REGION=us-east-1
log "starting versitygw on 127.0.0.1:$S3PORT"
"${RUN_AS[@]}" env ROOT_ACCESS_KEY="$AWS_ACCESS_KEY_ID" ROOT_SECRET_KEY="$AWS_SECRET_ACCESS_KEY" \
	"$WORK/versitygw" --port "127.0.0.1:$S3PORT" posix "$S3ROOT" >"$WORK/s3.log" 2>&1 &
PIDS+=($!)
wait_port "$S3PORT" versitygw || { cat "$WORK/s3.log"; exit 1; }

export STRATA_TEST_POSTGRES_URL="postgres://strata@127.0.0.1:$PGPORT/strata_test?sslmode=disable"
export STRATA_TEST_S3_URL="s3://strata-test?endpoint=http://127.0.0.1:$S3PORT&use_path_style=true&region=us-east-1"
export STRATA_TEST_S3_ROOT="$S3ROOT"
export STRATA_TEST_REQUIRE_SERVICES=1

if [ $# -eq 0 ]; then set -- ./...; fi
log "go test -tags duckdb_arrow $*"
go test -tags duckdb_arrow "$@"

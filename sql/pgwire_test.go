package sql_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/strata-db/strata/internal/testenv"
	"github.com/strata-db/strata/sql"
)

// startPG serves the env's executor over the Postgres protocol.
func startPG(t *testing.T, e *env) string {
	t.Helper()
	srv, err := sql.NewPGServer(context.Background(), e.exec)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func pgConnect(t *testing.T, addr string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("postgres://grafana@" + addr + "/strata?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestPG_PgxBothProtocolsAndTypes(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Recent: ingest refuses what the project's retention would delete.
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second).Add(123456 * time.Microsecond)
	e.send(span{name: "GET /cart", service: "cart", route: "/cart", start: start, dur: 1500 * time.Millisecond,
		traceID: "0af7651916cd43dd8448eb211c80319c"})
	e.send(span{name: "POST /pay", service: "pay", start: start.Add(time.Second)})
	e.flushed()
	addr := startPG(t, e)
	ctx := context.Background()
	for name, mode := range map[string]pgx.QueryExecMode{
		"extended (cached statements)": pgx.QueryExecModeCacheStatement,
		"extended (describe exec)":     pgx.QueryExecModeDescribeExec,
		"simple":                       pgx.QueryExecModeSimpleProtocol,
	} {
		c := pgConnect(t, addr, mode)
		var (
			spanName, route string
			ts              time.Time
			dur             float64
			level           int32
			isExc           bool
			n               int64
		)
		err := c.QueryRow(ctx, `SELECT span_name, http_route, start_timestamp, duration, level, is_exception,
			count(*) OVER () FROM records WHERE trace_id = $1`, "0af7651916cd43dd8448eb211c80319c").
			Scan(&spanName, &route, &ts, &dur, &level, &isExc, &n)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if spanName != "GET /cart" || route != "/cart" || !ts.Equal(start) || dur != 1.5 || level != 9 || isExc || n != 1 {
			t.Errorf("%s: got %q %q %v %v %d %v %d", name, spanName, route, ts, dur, level, isExc, n)
		}
		rows, err := c.Query(ctx, "SELECT service_name, count(*) FROM records WHERE start_timestamp >= $1 GROUP BY 1 ORDER BY 1", start.Add(-time.Hour))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for rows.Next() {
			var svc string
			var cnt int64
			if err := rows.Scan(&svc, &cnt); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s=%d", svc, cnt))
		}
		if rows.Err() != nil || strings.Join(got, ",") != "cart=1,pay=1" {
			t.Errorf("%s: group by: %v %v", name, got, rows.Err())
		}
		// Errors carry SQLSTATEs clients understand.
		for sqlText, code := range map[string]string{
			"SELECT * FORM records":                 "42601",
			"SELECT * FROM read_csv('/etc/passwd')": "42501",
			"SELECT nope FROM records":              "42703",
			"SELECT 'x'::int":                       "22P02", // as PostgreSQL's (QA: 22000)
			"SELECT 2147483647::int + 1":            "22003",
		} {
			_, err := c.Exec(ctx, sqlText)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != code {
				t.Errorf("%s: %s: %v, want SQLSTATE %s", name, sqlText, err, code)
			}
		}
		if err := c.Ping(ctx); err != nil {
			t.Errorf("%s: ping: %v", name, err)
		}
	}
}

func TestPG_CatalogQueriesOfGrafanaAndDrivers(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	var tables []string
	// Grafana's table picker.
	rows, err := c.Query(ctx, `SELECT quote_ident(table_name) AS table_name FROM information_schema.tables
		WHERE quote_ident(table_schema) IN (
		  SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
		  FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1),
		                       array_upper(string_to_array(current_setting('search_path'),','),1)) as i,
		       string_to_array(current_setting('search_path'),',') s)
		ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	if rows.Err() != nil || strings.Join(tables, ",") != "metrics,records" {
		t.Fatalf("grafana table list: %v %v", tables, rows.Err())
	}
	// Grafana's column picker.
	var cols []string
	rows, err = c.Query(ctx, `SELECT column_name, data_type, udt_name FROM information_schema.columns WHERE table_name = 'records' ORDER BY ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, typ, udt string
		rows.Scan(&name, &typ, &udt)
		cols = append(cols, name+" "+typ+" "+udt)
	}
	// PostgreSQL's type names, which Grafana's picker sorts columns by.
	want := []string{"start_timestamp timestamp with time zone timestamptz", "duration double precision float8",
		"trace_id text text", "attributes json json", "is_exception boolean bool"}
	for _, w := range want {
		if !slices.Contains(cols, w) {
			t.Errorf("grafana columns: no %q in %v", w, cols)
		}
	}
	if len(cols) < 40 || rows.Err() != nil {
		t.Fatalf("grafana columns: %v %v", cols, rows.Err())
	}
	// Grafana's column picker (getSchema), exactly as it sends it.
	cols = cols[:0]
	rows, err = c.Query(ctx, `SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('records'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('records'))[1]
          AND quote_ident(table_name) = (parse_ident('records'))[2]
        ELSE quote_ident(table_name) = 'records'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, typ string
		rows.Scan(&name, &typ)
		cols = append(cols, name)
	}
	if rows.Err() != nil || len(cols) < 40 {
		t.Fatalf("grafana getSchema: %d columns, %v", len(cols), rows.Err())
	}
	// Grafana's schema list and TimescaleDB check.
	var schemas []string
	rows, err = c.Query(ctx, `SELECT schema_name AS "name" FROM information_schema.schemata
		WHERE schema_name NOT IN ('information_schema', 'pg_catalog', 'pg_toast') ORDER BY schema_name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		schemas = append(schemas, n)
	}
	if rows.Err() != nil || strings.Join(schemas, ",") != "main" {
		t.Errorf("grafana schemas: %v %v", schemas, rows.Err())
	}
	rows, err = c.Query(ctx, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
	if err != nil || rows.Next() {
		t.Errorf("timescaledb check: %v, want no rows", err)
	}
	rows.Close()
	var version, schemaName string
	if err := c.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil || version == "" {
		t.Fatalf("version(): %q %v", version, err)
	}
	if err := c.QueryRow(ctx, "SELECT current_schema()").Scan(&schemaName); err != nil {
		t.Fatalf("current_schema(): %v", err)
	}
	for _, s := range []string{"SET application_name = 'grafana'", "BEGIN", "SAVEPOINT a", "ROLLBACK TO SAVEPOINT a", "RELEASE SAVEPOINT a", "COMMIT", "SET TIME ZONE 'UTC'", "DISCARD ALL"} {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	var tz string
	if err := c.QueryRow(ctx, "SHOW TIME ZONE").Scan(&tz); err != nil || tz != "UTC" {
		t.Errorf("SHOW TIME ZONE: %q %v", tz, err)
	}
}

// findPsql finds PostgreSQL's psql, or skips the test.
func findPsql(t *testing.T) string {
	t.Helper()
	psql, err := exec.LookPath("psql")
	if err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
		if len(matches) == 0 {
			t.Skip("psql is not installed")
		}
		psql = matches[len(matches)-1]
	}
	return psql
}

func TestPG_PsqlDescribesTheTables(t *testing.T) {
	psql := findPsql(t)
	e := newEnv(t, envOptions{})
	e.send(span{name: "hello from psql"})
	e.flushed()
	addr := startPG(t, e)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(psql, "-h", host, "-p", port, "-U", "someone", "-d", "strata", "-X",
		"-c", `\dt`, "-c", `\d records`, "-c", "SELECT span_name FROM records",
		"-c", `\d+ metrics`, "-c", `\dt+`, "-c", `\l`,
		// Other describe commands answer, if only with an empty list.
		"-c", `\db`, "-c", `\dO`, "-c", `\dT`, "-c", `\df`, "-c", `\dn`, "-c", `\dv`, "-c", `\di`, "-c", `\du`,
		"-c", `\dx`, "-c", `\dp`, "-c", `\dconfig`, "-c", `\dd`, "-c", `\dd records`,
		"-c", `\copy (SELECT span_name, 'x,y' AS s FROM records) to stdout with csv header`)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "ERROR") || strings.Contains(string(out), "out of range") {
		t.Errorf("psql met an error:\n%s", out)
	}
	for _, want := range []string{"records | table", "metrics | table", `Table "main.records"`,
		"start_timestamp", "timestamp with time zone", "attributes", "json", "hello from psql",
		`Table "main.metrics"`, "Storage", "List of databases", "UTF8", "pg_default", "List of collations", "Object descriptions",
		"span_name,s\nhello from psql,\"x,y\"\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("psql output lacks %q:\n%s", want, out)
		}
	}

	// \sf says why it shows nothing.
	out, _ = exec.Command(psql, "-h", host, "-p", port, "-U", "someone", "-d", "strata", "-X", "-c", `\sf to_char`).CombinedOutput()
	if !strings.Contains(string(out), "function definitions are not shown here") {
		t.Errorf(`psql \sf: %s`, out)
	}

	// \gdesc names the types of a result's columns (a list of integers is
	// an integer[]), and lists come out as PostgreSQL writes arrays.
	cmd = exec.Command(psql, "-h", host, "-p", port, "-U", "someone", "-d", "strata", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1")
	cmd.Stdin = strings.NewReader(`SELECT 1::int AS a, 2.0::float8 AS b, now() AS c, 'x' AS d, 1::bigint AS e, INTERVAL '1 day' AS f, [1, 2] AS g \gdesc` + "\n" +
		`SELECT [1, NULL]::BIGINT[], ['a', 'b c', '', 'null', NULL, 'q"\'], []::INT[]` + "\n")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err = cmd.CombinedOutput()
	if want := "a|integer\nb|double precision\nc|timestamp with time zone\nd|text\ne|bigint\nf|interval\ng|integer[]\n" +
		`{1,NULL}|{a,"b c","","null",NULL,"q\"\\"}|{}` + "\n"; err != nil || string(out) != want {
		t.Errorf("psql \\gdesc: %v\n%s\nwant\n%s", err, out, want)
	}
}

func TestPG_GarbageAndCancelLeaveTheServerServing(t *testing.T) {
	e := newEnv(t, envOptions{queryTimeout: time.Minute})
	e.send(span{})
	e.flushed()
	addr := startPG(t, e)
	// Clients speaking something else: HTTP, random bytes, a half message.
	for _, garbage := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0xff},
		{0, 0, 0, 100, 0, 3, 0},
		{0xff, 0xff, 0xff, 0xff},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(garbage)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		conn.Read(buf) // an error message or a close, never a hang
		conn.Close()
	}
	c := pgConnect(t, addr, pgx.QueryExecModeCacheStatement)
	ctx := context.Background()
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM records").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after garbage: %d %v", n, err)
	}
	// A canceled context sends a CancelRequest; the query stops.
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(qctx, "SELECT count(*) FROM range(5000000000)")
	if err == nil {
		t.Fatal("long query was not canceled")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("cancel took %v", took)
	}
	c2 := pgConnect(t, addr, pgx.QueryExecModeCacheStatement)
	if err := c2.QueryRow(ctx, "SELECT count(*) FROM records").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after cancel: %d %v", n, err)
	}
}

// Queries that name catalog words only inside literals are about data; a
// catalog query is sandboxed, and its errors reach the client.
func TestPG_CatalogRoutingAndSandbox(t *testing.T) {
	e := newEnv(t, envOptions{flushInterval: time.Hour})
	e.send(span{name: "SELECT * FROM pg_class"}, span{name: "GET /"})
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue.depth")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(7)
	m.Gauge().DataPoints().At(0).SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	if err := e.rcv.Metrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	addr := startPG(t, e)
	ctx := context.Background()
	for name, mode := range map[string]pgx.QueryExecMode{
		"extended": pgx.QueryExecModeCacheStatement,
		"simple":   pgx.QueryExecModeSimpleProtocol,
	} {
		c := pgConnect(t, addr, mode)
		count := func(q string) int64 {
			t.Helper()
			var n int64
			if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
				t.Fatalf("%s: %s: %v", name, q, err)
			}
			return n
		}
		// Unflushed metric points: this query ended the server once.
		if n := count("SELECT count(*) FROM metrics"); n != 1 {
			t.Errorf("%s: %d unflushed metric points, want 1", name, n)
		}
		for _, q := range []string{`SELECT count(*) AS "pg_class" FROM records`, `SELECT count(*) AS pg_type FROM records`,
			`SELECT count(*) AS "n" FROM records AS "pg_namespace"`,
			`SELECT count(*) FROM (SELECT version()) x, records`, `SELECT count(*) FROM"records" WHERE current_database() IS NOT NULL`,
			"SELECT count(*) FROM\u00a0records WHERE current_database() IS NOT NULL",
			`SELECT count(*) / 3 FROM (UNPIVOT records ON span_name, kind, otel_status_code INTO NAME k VALUE v) WHERE current_database() IS NOT NULL`} {
			if n := count(q); n != 2 {
				t.Errorf("%s: %s: %d rows, want 2 (a data query naming a catalog table)", name, q, n)
			}
		}
		// And a catalog query naming a data table, but not reading it.
		for _, q := range []string{`SELECT count(*) AS records FROM pg_class WHERE relname = 'records'`,
			`SELECT count(*) AS metrics FROM information_schema.columns WHERE table_name = 'metrics'`} {
			if n := count(q); n < 1 {
				t.Errorf("%s: %s: %d, want the catalog's answer", name, q, n)
			}
		}
		// A qualified data table with a catalog word went to the catalog's
		// empty tables and answered 0; it is a data query, answered from
		// the data.
		for _, q := range []string{`SELECT count(*) FROM memory.main.records WHERE current_database() IS NOT NULL`,
			`SELECT count(*) FROM memory.main.records, (SELECT version())`} {
			if n := count(q); n != 2 {
				t.Errorf("%s: %s: %d rows, want 2", name, q, n)
			}
		}
		if n := count(`SELECT count(*) FROM records WHERE span_name <> 'pg_class' -- not information_schema`); n != 2 {
			t.Errorf("%s: data query with catalog words in literals: %d rows, want 2", name, n)
		}
		if n := count(`SELECT count(*) AS pg_count FROM records`); n != 2 {
			t.Errorf("%s: a data query with a pg_ alias: %d rows, want 2", name, n)
		}
		if n := count(`SELECT count(*) FROM records WHERE pg_typeof(span_name) IS NOT NULL`); n != 2 {
			t.Errorf("%s: a data query calling pg_typeof: %d rows, want 2", name, n)
		}
		if n := count(`SELECT count(*) FROM records WHERE span_name LIKE '%pg_class%'`); n != 1 {
			t.Errorf("%s: LIKE '%%pg_class%%': %d rows, want 1", name, n)
		}
		var version int
		if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int/100 AS version").Scan(&version); err != nil || version != 1600 {
			t.Errorf("%s: Grafana's version check: %d %v", name, version, err)
		}
		var v string
		rows, err := c.Query(ctx, "SELECT version()")
		if err != nil {
			t.Fatal(err)
		}
		if f := rows.FieldDescriptions(); len(f) != 1 || f[0].Name != "version" {
			t.Errorf("%s: version() column: %+v", name, f)
		}
		for rows.Next() {
			rows.Scan(&v)
		}
		if !strings.HasPrefix(v, "PostgreSQL 16") {
			t.Errorf("%s: version() = %q", name, v)
		}
		for q, code := range map[string]string{
			"SELECT nosuchfunc(1) FROM pg_catalog.pg_class":                         "42703",
			"SELECT current_setting('no_such_setting')":                             "22000",
			"SELECT value FROM duckdb_settings() WHERE 'pg_catalog' = 'pg_catalog'": "42501",
			"SELECT * FROM read_text('/etc/passwd'), pg_catalog.pg_class":           "42501",
			"SELECT getenv('HOME') FROM pg_catalog.pg_class":                        "42501",
		} {
			_, err := c.Exec(ctx, q)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != code {
				t.Errorf("%s: %s: %v, want SQLSTATE %s", name, q, err, code)
			}
		}
		// A table strata does not have is "none", as before.
		if rows, err := c.Query(ctx, "SELECT polname FROM pg_catalog.pg_policy"); err != nil || rows.Next() {
			t.Errorf("%s: pg_policy: %v, want no rows", name, err)
		} else {
			rows.Close()
		}
	}
	// Semicolons inside dollar quotes and escaped strings do not split.
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	var a, b string
	if err := c.QueryRow(ctx, `SELECT $$x;y$$, E'a\'b;c'`).Scan(&a, &b); err != nil || a != "x;y" || b != "a'b;c" {
		t.Errorf("quoted semicolons: %q %q %v", a, b, err)
	}
}

// rawPG is a protocol-level client, for what drivers do not send on their
// own: half-finished portals, hang-ups, odd messages.
type rawPG struct {
	t    *testing.T
	conn net.Conn
	fe   *pgproto3.Frontend
}

func dialRawPG(t *testing.T, addr string) *rawPG {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &rawPG{t: t, conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
	r.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "raw"}})
	r.until("*pgproto3.ReadyForQuery")
	return r
}

func (r *rawPG) send(msgs ...pgproto3.FrontendMessage) {
	r.t.Helper()
	for _, m := range msgs {
		r.fe.Send(m)
	}
	if err := r.fe.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// ask sends a simple query and returns what the server answered.
func (r *rawPG) ask(sql string) string {
	r.t.Helper()
	r.send(&pgproto3.Query{String: sql})
	return strings.Join(r.until("*pgproto3.ReadyForQuery"), " ")
}

// portal opens portal name over a million
// rows, suspended after maxRows; it returns what the server answered.
func (r *rawPG) portal(name string, maxRows uint32) string {
	r.t.Helper()
	r.send(&pgproto3.Parse{Name: name, Query: "SELECT i FROM range(1000000) t(i)"},
		&pgproto3.Bind{PreparedStatement: name, DestinationPortal: name},
		&pgproto3.Execute{Portal: name, MaxRows: maxRows}, &pgproto3.Sync{})
	return strings.Join(r.until("*pgproto3.ReadyForQuery"), " ")
}

// until reads messages up to one of the given type and returns their types.
func (r *rawPG) until(typ string) []string {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var seen []string
	for {
		m, err := r.fe.Receive()
		if err != nil {
			r.t.Fatalf("waiting for %s after %v: %v", typ, seen, err)
		}
		name := fmt.Sprintf("%T", m)
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			name += "(" + e.Code + ")"
		}
		seen = append(seen, name)
		if strings.HasPrefix(name, typ) {
			return seen
		}
	}
}

func TestPG_SessionsReleaseWhatTheyHold(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 0), queryTimeout: time.Minute})
	e.send(span{})
	e.flushed()
	addr := startPG(t, e)
	ctx := context.Background()
	canQuery := func(when string) {
		t.Helper()
		c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
		var n int64
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if err = c.QueryRow(ctx, "SELECT count(*) FROM records").Scan(&n); err == nil {
				return
			}
		}
		t.Fatalf("%s: the only query slot stayed taken: %v", when, err)
	}

	// A client that hangs up mid-query frees its slot: the query stops.
	r := dialRawPG(t, addr)
	r.send(&pgproto3.Query{String: "SELECT count(*) FROM range(20000000000) t(i) WHERE i % 7 = 3"})
	time.Sleep(300 * time.Millisecond)
	r.conn.Close()
	canQuery("after a hang-up")

	// A portal described and left behind is closed at Sync.
	r = dialRawPG(t, addr)
	r.send(&pgproto3.Parse{Name: "s1", Query: "SELECT span_name FROM records"},
		&pgproto3.Bind{PreparedStatement: "s1", DestinationPortal: "p1"},
		&pgproto3.Describe{ObjectType: 'P', Name: "p1"}, &pgproto3.Sync{})
	r.until("*pgproto3.ReadyForQuery")
	canQuery("after an abandoned portal")

	// Messages strata does not take get an error and the session goes on;
	// COPY messages outside COPY are ignored, as PostgreSQL does.
	r.send(&pgproto3.FunctionCall{Function: 1}, &pgproto3.CopyDone{}, &pgproto3.Query{String: "SELECT 1"})
	seen := r.until("*pgproto3.ReadyForQuery")
	if !strings.Contains(strings.Join(seen, " "), "ErrorResponse(0A000)") {
		t.Errorf("FunctionCall: %v", seen)
	}
	seen = r.until("*pgproto3.ReadyForQuery")
	if !strings.Contains(strings.Join(seen, " "), "DataRow") {
		t.Errorf("a query after FunctionCall and CopyDone: %v", seen)
	}
	// A SET in a simple query gets its CommandComplete, not NoData.
	r.send(&pgproto3.Query{String: "SET application_name = 'x'"})
	if seen := r.until("*pgproto3.ReadyForQuery"); strings.Contains(strings.Join(seen, " "), "NoData") {
		t.Errorf("SET: %v", seen)
	}

	// A message over the size limit ends the session with a clear error.
	r = dialRawPG(t, addr)
	r.conn.Write([]byte{'Q', 0, 0x30, 0, 0, 'S', 'E', 'L'}) // announces 3 MiB
	if seen := r.until("*pgproto3.ErrorResponse"); !strings.Contains(seen[len(seen)-1], "54000") {
		t.Errorf("oversized message: %v", seen)
	}
	canQuery("after an oversized message")
}

// What PostgreSQL clients expect of values and of the protocol's corners.
func TestPG_ValuesAndPortalsAsPostgresSendsThem(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := range 10 {
		e.send(span{name: fmt.Sprintf("op%d", i)})
	}
	e.flushed()
	addr := startPG(t, e)
	ctx := context.Background()

	// Binary timestamps (pgx's cached statements read them in binary) far
	// from 2000 and infinite ones come back as they are.
	c := pgConnect(t, addr, pgx.QueryExecModeCacheStatement)
	for lit, want := range map[string]time.Time{
		"1500-01-01 00:00:00+00": time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC),
		"2500-06-01 12:00:00+00": time.Date(2500, 6, 1, 12, 0, 0, 0, time.UTC),
	} {
		var got time.Time
		if err := c.QueryRow(ctx, "SELECT TIMESTAMPTZ '"+lit+"'").Scan(&got); err != nil || !got.Equal(want) {
			t.Errorf("timestamp %s: %v %v", lit, got, err)
		}
		// And as a parameter, in binary.
		var back time.Time
		if err := c.QueryRow(ctx, "SELECT $1::TIMESTAMPTZ", want).Scan(&back); err != nil || !back.Equal(want) {
			t.Errorf("timestamp parameter %v: %v %v", want, back, err)
		}
	}
	// A parameter returned as it is is described as the text it comes back as.
	var echoed string
	if err := c.QueryRow(ctx, "SELECT $1 AS x", "it's; -- x").Scan(&echoed); err != nil || echoed != "it's; -- x" {
		t.Errorf("SELECT $1: %q %v", echoed, err)
	}
	// bytea parameters arrive byte for byte, and come back so.
	var blob []byte
	if err := c.QueryRow(ctx, "SELECT $1::BLOB", []byte{0, 1, 2, 0xff}).Scan(&blob); err != nil || !bytes.Equal(blob, []byte{0, 1, 2, 0xff}) {
		t.Errorf("bytea parameter: %x %v", blob, err)
	}
	var inf pgtype.Timestamptz
	if err := c.QueryRow(ctx, "SELECT 'infinity'::TIMESTAMPTZ").Scan(&inf); err != nil || inf.InfinityModifier != pgtype.Infinity {
		t.Errorf("infinity: %+v %v", inf, err)
	}
	// Decimals in binary (pgx asks for numeric so), exactly; sum() of an
	// integer column is a HUGEINT, sent as numeric too, as is a UBIGINT
	// (it was text).
	for lit, want := range map[string]string{
		"18446744073709551615::UBIGINT": "18446744073709551615", "0::UBIGINT": "0",
		"2.50::DECIMAL(5,2)": "2.50", "-0.05::DECIMAL(4,2)": "-0.05", "0::DECIMAL(3,1)": "0",
		"12345678.9::DECIMAL(12,1)": "12345678.9", "10000::DECIMAL(9,0)": "10000",
		"170141183460469231731687303715884105727::HUGEINT": "170141183460469231731687303715884105727",
	} {
		var n pgtype.Numeric
		if err := c.QueryRow(ctx, "SELECT "+lit).Scan(&n); err != nil {
			t.Errorf("%s: %v", lit, err)
			continue
		}
		if got, _ := n.Value(); got != want {
			t.Errorf("%s: %v, want %s", lit, got, want)
		}
	}
	ub, err := c.Query(ctx, "SELECT 1::UBIGINT, [1::UBIGINT, 2]")
	if err != nil {
		t.Fatal(err)
	}
	if f := ub.FieldDescriptions(); f[0].DataTypeOID != 1700 || f[1].DataTypeOID != 1231 {
		t.Errorf("UBIGINT and its list sent as OIDs %d and %d, want numeric (1700) and numeric[] (1231)", f[0].DataTypeOID, f[1].DataTypeOID)
	}
	ub.Close()
	var total int64
	if err := c.QueryRow(ctx, "SELECT sum(level) FROM records").Scan(&total); err != nil || total != 90 {
		t.Errorf("sum of an integer column: %d %v", total, err)
	}
	// Dates, infinite ones too, and DATE and REAL parameters in binary.
	for lit, want := range map[string]pgtype.Date{
		"'2024-02-29'": {Time: time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), Valid: true},
		"'infinity'":   {InfinityModifier: pgtype.Infinity, Valid: true},
		"'-infinity'":  {InfinityModifier: pgtype.NegativeInfinity, Valid: true},
	} {
		var got pgtype.Date
		if err := c.QueryRow(ctx, "SELECT DATE "+lit).Scan(&got); err != nil || got != want {
			t.Errorf("DATE %s: %+v %v", lit, got, err)
		}
	}
	var day string
	if err := c.QueryRow(ctx, "SELECT strftime($1::DATE, '%Y-%m-%d')", time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)).Scan(&day); err != nil || day != "1999-12-31" {
		t.Errorf("DATE parameter: %q %v", day, err)
	}
	var real float32
	if err := c.QueryRow(ctx, "SELECT $1::REAL * 2", float32(1.25)).Scan(&real); err != nil || real != 2.5 {
		t.Errorf("REAL parameter: %v %v", real, err)
	}
	// Text floats as PostgreSQL prints them.
	s := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	for lit, want := range map[string]string{"100000000::DOUBLE": "100000000", "1e15::DOUBLE": "1e+15", "0.00001::DOUBLE": "1e-05", "0.5::DOUBLE": "0.5"} {
		var got string
		if err := s.QueryRow(ctx, "SELECT ("+lit+")::DOUBLE").Scan(&got); err != nil {
			// pgx scans a float8 into a string through its text form
			t.Errorf("%s: %v", lit, err)
		}
		rows, _ := s.Query(ctx, "SELECT "+lit)
		for rows.Next() {
			if raw := string(rows.RawValues()[0]); raw != want {
				t.Errorf("%s is sent as %q, want %q", lit, raw, want)
			}
		}
		rows.Close()
	}
	// SHOW of an unknown setting is an error, as in PostgreSQL.
	var pe *pgconn.PgError
	if _, err := s.Exec(ctx, "SHOW no_such_setting"); !errors.As(err, &pe) || pe.Code != "42704" {
		t.Errorf("SHOW no_such_setting: %v", err)
	}

	// An Execute with a row limit suspends the portal; the next goes on.
	r := dialRawPG(t, addr)
	r.send(&pgproto3.Parse{Query: "SELECT span_name FROM records ORDER BY span_name"}, &pgproto3.Bind{},
		&pgproto3.Execute{MaxRows: 4}, &pgproto3.Execute{MaxRows: 4}, &pgproto3.Execute{MaxRows: 4}, &pgproto3.Sync{})
	got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " ")
	rows := strings.Count(got, "DataRow")
	if rows != 10 || strings.Count(got, "PortalSuspended") != 2 || !strings.Contains(got, "CommandComplete") || strings.Contains(got, "Error") {
		t.Errorf("Execute with MaxRows 4, three times: %d rows; %s", rows, got)
	}
	// A named portal run to completion answers a further Execute with no
	// rows, as PostgreSQL does, inside a transaction.
	r.ask("BEGIN")
	r.send(&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{DestinationPortal: "p1"},
		&pgproto3.Execute{Portal: "p1"}, &pgproto3.Execute{Portal: "p1"}, &pgproto3.Sync{})
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); strings.Count(got, "CommandComplete") != 2 || strings.Count(got, "DataRow") != 1 || strings.Contains(got, "Error") {
		t.Errorf("Execute of a finished portal: %s", got)
	}
	r.send(&pgproto3.Query{String: "COMMIT"})
	r.until("*pgproto3.ReadyForQuery")
	// A Bind with more parameters than the statement has is refused.
	r.send(&pgproto3.Parse{Query: "SELECT count(*) FROM records WHERE span_name = $1"},
		&pgproto3.Bind{Parameters: [][]byte{[]byte("a"), []byte("b")}}, &pgproto3.Sync{})
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(got, "ErrorResponse(08P01)") {
		t.Errorf("Bind with 2 parameters for 1: %s", got)
	}
}

// A portal left open inside a transaction holds a query slot only as long
// as a query may run.
func TestPG_IdlePortalsLoseTheirSlot(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 0), queryTimeout: 2 * time.Second})
	e.send(span{})
	e.flushed()
	addr := startPG(t, e)
	r := dialRawPG(t, addr)
	r.ask("BEGIN")
	r.send(&pgproto3.Parse{Name: "s1", Query: "SELECT span_name FROM records"},
		&pgproto3.Bind{PreparedStatement: "s1", DestinationPortal: "p1"},
		&pgproto3.Describe{ObjectType: 'P', Name: "p1"}, &pgproto3.Sync{})
	r.until("*pgproto3.ReadyForQuery")
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	var n int64
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM records").Scan(&n); err == nil {
		t.Fatal("the slot was free while the portal held it")
	}
	start := time.Now()
	var err error
	for time.Since(start) < 10*time.Second {
		if err = c.QueryRow(context.Background(), "SELECT count(*) FROM records").Scan(&n); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the idle portal kept the only slot: %v", err)
	}
	// The idle session itself goes on; its portal's end says why.
	if got := r.ask("SELECT 1"); !strings.Contains(got, "DataRow") {
		t.Errorf("the idle session after losing its portal: %s", got)
	}
	r.send(&pgproto3.Execute{Portal: "p1"}, &pgproto3.Sync{})
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(got, "ErrorResponse(57014)") {
		t.Errorf("executing the portal closed for idling: %s", got)
	}
}

// pg_settings lists the settings strata shows, not the catalog instance's
// DuckDB settings (which name the server's directories).
func TestPG_SettingsShowNoServerPaths(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	for _, q := range []string{
		"SELECT name, setting FROM pg_settings ORDER BY name",
		"SELECT s.name, s.setting FROM pg_catalog.pg_settings s ORDER BY 1",
		"SELECT pg_settings.name, pg_settings.setting FROM pg_catalog.PG_SETTINGS ORDER BY 1",
		"SELECT name, setting FROM PG_CATALOG.pg_settings",
		"SELECT name, setting FROM system.pg_settings",
		"SELECT name, setting FROM SYSTEM.PG_CATALOG.PG_SETTINGS",
		"SELECT a, b FROM pg_settings AS s(a, b)",
		"SELECT name, setting FROM (SELECT * FROM pg_settings) WHERE name IN (SELECT name FROM pg_settings)",
	} {
		rows, err := c.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got := map[string]string{}
		for rows.Next() {
			var name, setting string
			if err := rows.Scan(&name, &setting); err != nil {
				t.Fatal(err)
			}
			got[name] = setting
		}
		if rows.Err() != nil || got["server_version"] != "16.0 (strata)" || got["TimeZone"] != "UTC" {
			t.Fatalf("%s: %v %v", q, got, rows.Err())
		}
		for name, setting := range got {
			if strings.Contains(setting, e.dir) || strings.Contains(setting, "/") {
				t.Errorf("%s: %s = %q names a path", q, name, setting)
			}
		}
		if _, ok := got["temp_directory"]; ok || len(got) > 20 {
			t.Errorf("%s: DuckDB's own settings listed: %v", q, got)
		}
	}
	// A CTE of that name does not reach DuckDB's own settings (such a
	// query may fail).
	for _, q := range []string{
		"WITH pg_settings AS (SELECT * FROM pg_settings) SELECT name, setting FROM pg_settings",
		"SELECT name, setting FROM pg_settings UNION ALL (WITH pg_settings AS (SELECT 'a' AS name, 'b' AS setting) SELECT * FROM pg_settings)",
	} {
		rows, err := c.Query(ctx, q)
		if err != nil {
			continue // failing is fine; showing DuckDB's settings is not
		}
		for rows.Next() {
			var name, setting string
			rows.Scan(&name, &setting)
			if strings.Contains(setting, "/") || name == "temp_directory" {
				t.Errorf("%s: %s = %q", q, name, setting)
			}
		}
		rows.Close()
	}
	var tz string
	if err := c.QueryRow(ctx, "SELECT setting FROM pg_settings WHERE name = 'TimeZone'").Scan(&tz); err != nil || tz != "UTC" {
		t.Errorf("TimeZone by its PostgreSQL name: %q %v", tz, err)
	}
	// A scalar subquery's column is named after its own column.
	rows, err := c.Query(ctx, "SELECT (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'TimeZone')")
	if err != nil {
		t.Fatal(err)
	}
	if names := rows.FieldDescriptions(); len(names) != 1 || names[0].Name != "setting" {
		t.Errorf("scalar subquery column: %v", names)
	}
	rows.Close()
}

// A client that stops reading a result does not hold its query slot past
// the time limit: the write gives up and the session ends.
func TestPG_StalledReaderLosesItsSlot(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 0), queryTimeout: time.Second})
	addr := startPG(t, e)
	r := dialRawPG(t, addr)
	r.send(&pgproto3.Query{String: "SELECT i, repeat('x', 100) FROM range(1000000000000) t(i)"})
	// Never read. The next query gets the one slot once the write gives up.
	eventuallyQueries(t, addr, "the slot stayed with a client that stopped reading")
}

// eventuallyQueries waits up to 30 s for a query to run, or fails with why.
func eventuallyQueries(t *testing.T, addr, why string) {
	t.Helper()
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var n int
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.QueryRow(ctx, "SELECT 42").Scan(&n)
		cancel()
		if err == nil && n == 42 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", why, err)
		}
		if c.IsClosed() {
			c = pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
		}
	}
}

// A session whose own suspended portals hold every query slot gets 53300
// for one more query at once, rather than waiting for itself forever.
func TestPG_PortalsHoldingEverySlotDoNotDeadlockTheirSession(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(2, 8), queryTimeout: time.Minute})
	addr := startPG(t, e)
	r := dialRawPG(t, addr)
	r.ask("BEGIN")
	for i := range 2 {
		if seen := r.portal(fmt.Sprintf("p%d", i), 10); !strings.Contains(seen, "PortalSuspended") {
			t.Fatalf("portal %d: %s", i, seen)
		}
	}
	// Reading a portal to its end frees its slot for the next.
	r.send(&pgproto3.Execute{Portal: "p0"}, &pgproto3.Sync{})
	r.until("*pgproto3.ReadyForQuery")
	if seen := r.portal("p2", 10); !strings.Contains(seen, "PortalSuspended") {
		t.Fatalf("after a portal was read to its end: %s", seen)
	}
	if seen := r.portal("p3", 10); !strings.Contains(seen, "ErrorResponse(53300)") {
		t.Fatalf("a third portal while two hold both slots: %s, want 53300", seen)
	}

	// The error failed the transaction; its ROLLBACK ends the portals, and
	// their slots come free.
	if seen := r.ask("/* app */ ROLLBACK"); !strings.Contains(seen, "CommandComplete") {
		t.Fatalf("ROLLBACK after the busy error: %s", seen)
	}
	if seen := r.ask("SELECT 1"); !strings.Contains(seen, "DataRow") {
		t.Fatalf("a query after the ROLLBACK: %s", seen)
	}
}

// A statement refused at its Describe, while another session holds the
// only slot, counts as a busy query, as one refused when it runs does
// (review: only refusals at Execute were counted).
func TestPG_RefusalBeforeRunningCountsAsBusy(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 0), queryTimeout: time.Minute})
	addr := startPG(t, e)
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.exec.Collectors()...)
	holder := dialRawPG(t, addr)
	holder.ask("BEGIN")
	if seen := holder.portal("p", 10); !strings.Contains(seen, "PortalSuspended") {
		t.Fatalf("portal: %s", seen)
	}
	r := dialRawPG(t, addr)
	r.send(&pgproto3.Parse{Query: "SELECT range FROM range(10)"}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
	if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(seen, "ErrorResponse(53300)") {
		t.Fatalf("describe while the only slot is held: %s, want 53300", seen)
	}
	if n := counterValue(t, reg, "strata_query_queries_total", "busy"); n != 1 {
		t.Errorf("strata_query_queries_total{outcome=\"busy\"} = %v, want 1", n)
	}
}

// A session whose client stopped reading ends once its write gives up: it
// neither goes on with a half-written message nor keeps its slot, and a
// suspended portal's rows do not wait for the client without a limit.
func TestPG_StalledWritesEndTheSession(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(2, 8), queryTimeout: time.Second})
	addr := startPG(t, e)
	// Simple protocol: stop reading, then read again after the limit.
	r := dialRawPG(t, addr)
	r.send(&pgproto3.Query{String: "SELECT i, repeat('x', 1000) FROM range(100000000) t(i)"})
	time.Sleep(3 * time.Second)
	r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var err error
	for err == nil {
		_, err = r.fe.Receive()
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the session went on after its write gave up: %v", err)
	}
	// Extended protocol: two portals suspended by a row limit, never read,
	// hold both slots only until their writes give up.
	for i := range 2 {
		r := dialRawPG(t, addr)
		r.send(&pgproto3.Parse{Query: "SELECT i, repeat('x', 10000) FROM range(100000000) t(i)"},
			&pgproto3.Bind{}, &pgproto3.Execute{MaxRows: 1500 + uint32(i)}, &pgproto3.Sync{})
	}
	eventuallyQueries(t, addr, "suspended portals of stalled clients kept the slots")
}

// The fast 53300 is only for a session whose own portals hold every slot:
// one whose portal holds a slot while another session holds the rest
// waits its turn.
func TestPG_QueriesQueueWhenOthersHoldTheSlots(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(2, 8), queryTimeout: time.Minute})
	addr := startPG(t, e)
	a := dialRawPG(t, addr)
	a.ask("BEGIN")
	a.portal("p", 10)
	// Another session takes the other slot for a while.
	b := dialRawPG(t, addr)
	b.send(&pgproto3.Query{String: "SELECT count(*) FROM range(1000000000) t(i) WHERE i % 7 = 3"})
	time.Sleep(200 * time.Millisecond)
	if seen := a.ask("SELECT 42"); !strings.Contains(seen, "DataRow") {
		t.Fatalf("a query behind another session's: %s", seen)
	}
}

// A query stopped by the time limit before its first row gets 57014 and
// the session goes on (its answer is written after the limit).
func TestPG_TimeLimitBeforeTheFirstRowKeepsTheSession(t *testing.T) {
	e := newEnv(t, envOptions{queryTimeout: time.Second})
	addr := startPG(t, e)
	r := dialRawPG(t, addr)
	if seen := r.ask("SELECT count(*) FROM range(100000000000) t(i) WHERE i % 7 = 3"); !strings.Contains(seen, "ErrorResponse(57014)") {
		t.Fatalf("a query past its time limit: %s", seen)
	}
	if seen := r.ask("SELECT 1"); !strings.Contains(seen, "DataRow") {
		t.Fatalf("the session after it: %s", seen)
	}
}

// Sessions that each hold a slot with an open portal and wait for another
// do not wait for each other forever: after the time limit they get 53300.
func TestPG_SessionsWaitingForEachOtherGiveUp(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(2, 8), queryTimeout: time.Second})
	addr := startPG(t, e)
	var sessions []*rawPG
	for i := range 2 {
		r := dialRawPG(t, addr)
		r.ask("BEGIN")
		r.portal(fmt.Sprintf("p%d", i), 1)
		sessions = append(sessions, r)
	}
	for _, r := range sessions {
		r.send(&pgproto3.Query{String: "SELECT 42"})
	}
	for i, r := range sessions {
		if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(seen, "ErrorResponse(53300)") {
			t.Fatalf("session %d: %s", i, seen)
		}
	}
}

// An error inside a transaction fails it, as in PostgreSQL: the session
// reports status E, refuses other statements with 25P02 until ROLLBACK
// (or ROLLBACK TO a savepoint), and a COMMIT rolls back.
func TestPG_AnErrorFailsTheTransaction(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.send(span{})
	e.flushed()
	addr := startPG(t, e)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := pgConnect(t, addr, mode)
		var pe *pgconn.PgError
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT no_such_column FROM records"); err == nil {
			t.Fatalf("%v: an unknown column was no error", mode)
		}
		if st := c.PgConn().TxStatus(); st != 'E' {
			t.Errorf("%v: status %q after an error in a transaction, want E", mode, st)
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM records").Scan(&n); !errors.As(err, &pe) || pe.Code != "25P02" {
			t.Errorf("%v: a query in a failed transaction: %v, want 25P02", mode, err)
		}
		if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
			t.Errorf("%v: COMMIT of a failed transaction: %v, want it rolled back", mode, err)
		}
		if err := c.QueryRow(ctx, "SELECT count(*) FROM records").Scan(&n); err != nil || n != 1 || c.PgConn().TxStatus() != 'I' {
			t.Errorf("%v: after the rollback: %d rows, %v, status %q", mode, n, err, c.PgConn().TxStatus())
		}
		// psql's ON_ERROR_ROLLBACK: a savepoint before each statement, rolled
		// back to after an error, keeps the transaction going.
		for _, s := range []string{"BEGIN", "SAVEPOINT s", "SELECT 1/'x'", "ROLLBACK TO SAVEPOINT s", "SELECT count(*) FROM records", "COMMIT"} {
			_, err := c.Exec(ctx, s)
			if (err != nil) != (s == "SELECT 1/'x'") {
				t.Errorf("%v: %s: %v", mode, s, err)
			}
		}
	}
}

// Savepoints are kept as PostgreSQL keeps them: one never made cannot be
// rolled back to or released, none can be made outside a transaction, and
// COMMIT AND CHAIN starts the next transaction.
func TestPG_Savepoints(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		c := pgConnect(t, addr, mode)
		steps := []struct {
			sql    string
			code   string // SQLSTATE of the error, "" for none
			status byte
		}{
			{"SAVEPOINT a", "25P01", 'I'},
			{"RELEASE a", "25P01", 'I'},
			{"ROLLBACK TO a", "25P01", 'I'},
			{"COMMIT AND CHAIN", "25P01", 'I'},
			{"BEGIN", "", 'T'},
			{"SAVEPOINT a", "", 'T'},
			{`SAVEPOINT "B b"`, "", 'T'},
			{"SELECT no_such_column", "42703", 'E'},
			{"ROLLBACK TO nosuch", "3B001", 'E'}, // the failed state stays: only a known savepoint ends it
			{"SELECT 1", "25P02", 'E'},
			{`ROLLBACK TO SAVEPOINT "B b"`, "", 'T'},
			{"RELEASE SAVEPOINT A", "", 'T'}, // releases "B b" too
			{`ROLLBACK TO "B b"`, "3B001", 'E'},
			{"ROLLBACK AND CHAIN", "", 'T'},
			{"ROLLBACK TO a", "3B001", 'E'}, // the chained transaction has no savepoints
			{"COMMIT AND NO CHAIN", "", 'I'},
			{"BEGIN", "", 'T'},
			{"COMMIT AND CHAIN", "", 'T'},
			{"COMMIT", "", 'I'},
		}
		for _, st := range steps {
			_, err := c.Exec(ctx, st.sql)
			code := ""
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				code = pe.Code
			} else if err != nil {
				t.Fatalf("%v: %q: %v", mode, st.sql, err)
			}
			if code != st.code || c.PgConn().TxStatus() != st.status {
				t.Errorf("%v: %q: error %q, status %q; want %q, %q", mode, st.sql, code, c.PgConn().TxStatus(), st.code, st.status)
			}
		}
	}
}

// A statement's leading comments are skipped whole, nested ones too, so a
// word in a comment does not make a query a session statement; and a
// COMMIT sent as libpq's PQexecParams sends it (Parse, Bind, Describe,
// Execute) completes, its portal kept while it runs.
func TestPG_LeadingCommentsAndExtendedCommit(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		c := pgConnect(t, addr, mode)
		for _, q := range []string{"-- set the time range\nSELECT 42", "-- show me\nSELECT 42", "/* a /* nested */ SET x */ SELECT 42",
			"/* app */ -- end of day\n SELECT 42"} {
			var n int
			if err := c.QueryRow(ctx, q).Scan(&n); err != nil || n != 42 {
				t.Errorf("%v: %q: %d, %v", mode, q, n, err)
			}
		}
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := c.QueryRow(ctx, "-- count to the end of the day\nSELECT 42").Scan(&n); err != nil || n != 42 || c.PgConn().TxStatus() != 'T' {
			t.Errorf("%v: a query whose comment says end, in BEGIN: %d, %v, status %q", mode, n, err, c.PgConn().TxStatus())
		}
		res := c.PgConn().ExecParams(ctx, "/* app */ COMMIT", nil, nil, nil, nil).Read()
		if res.Err != nil || res.CommandTag.String() != "COMMIT" || c.PgConn().TxStatus() != 'I' {
			t.Errorf("%v: COMMIT through Parse/Bind/Describe/Execute: %v %q, status %q", mode, res.Err, res.CommandTag, c.PgConn().TxStatus())
		}
		// Comments between and after words, nested, or ended by a CR.
		var path string
		for _, q := range []string{"SHOW search_path -- c", "SHOW /* c */ search_path"} {
			if err := c.QueryRow(ctx, q).Scan(&path); err != nil || path != "main" {
				t.Errorf("%v: %q: %q, %v", mode, q, path, err)
			}
		}
		steps := []struct {
			sql    string
			status byte
		}{
			{"START /* x */ TRANSACTION", 'T'},
			{"SAVEPOINT s", 'T'},
			{"SELECT no_such_column", 'E'},
			{"ROLLBACK /* why */ TO s", 'T'},
			{"/* a /* b */ ; COMMIT */ SELECT 42", 'T'},
			{"SELECT no_such_column", 'E'},
			{"-- note\rROLLBACK", 'I'},
		}
		for _, st := range steps {
			c.Exec(ctx, st.sql)
			if got := c.PgConn().TxStatus(); got != st.status {
				t.Errorf("%v: after %q: status %q, want %q", mode, st.sql, got, st.status)
			}
		}
	}
	// Describe does not run a COMMIT: its Execute does (here, never).
	r := dialRawPG(t, addr)
	r.ask("BEGIN")
	r.send(&pgproto3.Parse{Query: "COMMIT"}, &pgproto3.Bind{DestinationPortal: "p"}, &pgproto3.Describe{ObjectType: 'P', Name: "p"},
		&pgproto3.Close{ObjectType: 'P', Name: "p"}, &pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{})
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(got, "NoData") || !strings.Contains(got, "ErrorResponse(34000)") {
		t.Errorf("Describe, Close, Execute of COMMIT: %s", got)
	}
	if got := r.ask("SELECT 1"); !strings.Contains(got, "ErrorResponse(25P02)") {
		t.Errorf("after an Execute of a closed portal in BEGIN, the transaction should be failed, not committed: %s", got)
	}
	// A statement of nothing but a comment, or semicolons, is an empty query.
	r.ask("ROLLBACK")
	for _, q := range []string{"-- nothing", "/* c */ ;"} {
		r.send(&pgproto3.Parse{Query: q}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(got, "EmptyQueryResponse") || strings.Contains(got, "Error") {
			t.Errorf("%q, extended protocol: %s", q, got)
		}
	}
	// A quote or "--" inside a quoted identifier opens nothing; a
	// dollar-quoted string's tag may be any letter.
	r.ask("BEGIN")
	if got := r.ask("SELECT 'a' AS \"x'\" -- ' \"; COMMIT\n"); strings.Count(got, "DataRow") != 1 || strings.Contains(got, "Error") {
		t.Errorf("a COMMIT in a comment after a quoted identifier: %s", got)
	}
	if got := r.ask("SELECT no_such_column"); !strings.Contains(got, "ErrorResponse") {
		t.Errorf("%s", got)
	}
	if got := r.ask("SELECT 1"); !strings.Contains(got, "ErrorResponse(25P02)") {
		t.Errorf("the transaction was committed by a COMMIT in a comment: %s", got)
	}
	r.ask("ROLLBACK")
	if got := r.ask("SELECT 1 AS \"a--b\"; SELECT 2"); strings.Count(got, "DataRow") != 2 {
		t.Errorf("two statements, the first with \"a--b\": %s", got)
	}
	if got := r.ask("SELECT $ä$x;y$ä$"); strings.Count(got, "DataRow") != 1 || strings.Contains(got, "Error") {
		t.Errorf("a dollar-quoted string tagged ä: %s", got)
	}
	if got := r.ask("SELECT 1 AS x$ä$; SELECT 2 AS y$ä$"); strings.Count(got, "DataRow") != 2 {
		t.Errorf("'$' inside identifiers: %s", got)
	}
	// A prepared statement holds one command, as in PostgreSQL.
	r.send(&pgproto3.Parse{Query: "COMMIT; SELECT 1"}, &pgproto3.Sync{})
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(got, "ErrorResponse(42601)") {
		t.Errorf("Parse of two statements: %s", got)
	}
	// SHOW with a comment between its words; SHOW ALL described in full.
	c := pgConnect(t, addr, pgx.QueryExecModeDescribeExec)
	var level string
	if err := c.QueryRow(ctx, "SHOW transaction /* c */ isolation level").Scan(&level); err != nil || level != "read committed" {
		t.Errorf("SHOW with a comment inside its name: %q %v", level, err)
	}
	rows, err := c.Query(ctx, "SHOW ALL")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rows.FieldDescriptions()); n != 3 {
		t.Errorf("SHOW ALL, described: %d columns, want 3", n)
	}
	rows.Close()
}

// Parse, Bind and Describe run user SQL through DuckDB before any Execute:
// they used to do it with no slot, no time limit and no care for a client
// gone, and a Parse of `$200000000` allocated gigabytes of parameter types.
func TestPG_StatementWorkBeforeExecuteIsBounded(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 0), queryTimeout: 500 * time.Millisecond})
	addr := startPG(t, e)
	r := dialRawPG(t, addr)
	extended := func(sql string, params ...[]byte) string {
		r.send(&pgproto3.Parse{Query: sql}, &pgproto3.Bind{Parameters: params}, &pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		return strings.Join(r.until("*pgproto3.ReadyForQuery"), " ")
	}
	for _, c := range []struct{ name, sql, want string }{
		{"a parameter past the protocol's 65535", "SELECT $200000000 AS x", "ErrorResponse(54023)"},
		{"constant bounds past the time limit",
			"SELECT span_name FROM records WHERE start_timestamp > to_timestamp(list_sum(list_transform(range(20000000), x -> x % 2)))",
			"ErrorResponse(57014)"},
	} {
		r.send(&pgproto3.Parse{Query: c.sql}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
		if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(seen, c.want) {
			t.Errorf("%s: got %s, want %s", c.name, seen, c.want)
		}
	}
	// (Query and Parse end their text at a NUL: only parameters carry one.)
	if seen := extended("SELECT $1::VARCHAR AS x", []byte("a\x00b")); !strings.Contains(seen, "ErrorResponse(22021)") {
		t.Errorf("a NUL byte in a parameter: got %s", seen)
	}
	// Invalid UTF-8 is refused as PostgreSQL refuses it (it was replaced
	// by U+FFFD); bytea is bytes.
	if seen := extended("SELECT $1::VARCHAR AS x", []byte("a\xffb")); !strings.Contains(seen, "ErrorResponse(22021)") {
		t.Errorf("invalid UTF-8 in a parameter: got %s", seen)
	}
	r.send(&pgproto3.Parse{Query: "SELECT octet_length($1::BLOB) AS n", ParameterOIDs: []uint32{17}},
		&pgproto3.Bind{Parameters: [][]byte{{0xff, 0xfe}}, ParameterFormatCodes: []int16{1}}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(seen, "DataRow") {
		t.Errorf("binary bytea parameter: %s", seen)
	}
	if seen := extended("SELECT $1::VARCHAR AS x", []byte("ab")); !strings.Contains(seen, "DataRow") {
		t.Errorf("the session after them: %s", seen)
	}

	// While another session's query holds the only slot, parsing a short
	// text needs none, but a Describe (it runs the query's constant
	// expressions) waits in no queue (of size 0) and gets 53300, as a
	// query would; and it sends no parameter description before its error.
	b := dialRawPG(t, addr)
	b.send(&pgproto3.Query{String: "SELECT count(*) FROM range(1000000000) t(i) WHERE i % 7 = 3"})
	time.Sleep(100 * time.Millisecond)
	r.send(&pgproto3.Parse{Name: "s", Query: "SELECT span_name FROM records WHERE span_name = $1"}, &pgproto3.Sync{})
	if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(seen, "ParseComplete") {
		t.Errorf("Parse of a short text while the only slot is taken: %s", seen)
	}
	r.send(&pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{})
	if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); seen != "*pgproto3.ErrorResponse(53300) *pgproto3.ReadyForQuery" {
		t.Errorf("Describe while the only slot is taken: %s", seen)
	}
}

// A session whose suspended portal holds the only slot can still describe
// a statement and bind its portal again (the Bind replaces the portal, and
// with it the slot it held), as before statement work took slots.
func TestPG_SessionHoldingTheOnlySlotDescribesAndBinds(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 0), queryTimeout: 10 * time.Second})
	r := dialRawPG(t, startPG(t, e))
	r.ask("BEGIN")
	r.send(&pgproto3.Parse{Name: "a", Query: "SELECT * FROM range($1::BIGINT) t(i)"},
		&pgproto3.Bind{PreparedStatement: "a", DestinationPortal: "p", Parameters: [][]byte{[]byte("100000000")}},
		&pgproto3.Execute{Portal: "p", MaxRows: 2}, &pgproto3.Sync{})
	if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(seen, "PortalSuspended") {
		t.Fatalf("opening the portal: %s", seen)
	}
	r.send(&pgproto3.Describe{ObjectType: 'S', Name: "a"}, &pgproto3.Sync{})
	if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(seen, "RowDescription") {
		t.Errorf("Describe while the session's portal holds the slot: %s", seen)
	}
	r.send(&pgproto3.Bind{PreparedStatement: "a", DestinationPortal: "p", Parameters: [][]byte{[]byte("3")}},
		&pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{})
	if seen := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); strings.Count(seen, "DataRow") != 3 {
		t.Errorf("Bind of the same portal again: %s", seen)
	}
}

// Dates and timestamps before what PostgreSQL's binary forms hold used to
// wrap around into the far future (290308 BC read as 294248 AD); they are
// sent as -infinity.
func TestPG_BinaryDatesPastTheirRangeAreInfinite(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeCacheStatement) // binary results
	ctx := context.Background()
	var ts pgtype.Timestamp
	var d pgtype.Date
	var ok pgtype.Timestamp
	if err := c.QueryRow(ctx, "SELECT '290308-12-22 (BC)'::TIMESTAMP, '5877642-06-25 (BC)'::DATE, '1500-03-01 12:00:00'::TIMESTAMP").Scan(&ts, &d, &ok); err != nil {
		t.Fatal(err)
	}
	if ts.InfinityModifier != pgtype.NegativeInfinity || d.InfinityModifier != pgtype.NegativeInfinity {
		t.Errorf("timestamp %v (%v), date %v (%v): want -infinity", ts.Time, ts.InfinityModifier, d.Time, d.InfinityModifier)
	}
	// Within the int64's range but before PostgreSQL's 4714 BC: clients
	// refuse them (the whole query failed).
	if err := c.QueryRow(ctx, "SELECT TIMESTAMP '0001-01-01' - INTERVAL 5000 YEAR, CAST(DATE '0001-01-01' - 2000000 AS DATE)").Scan(&ts, &d); err != nil {
		t.Fatal(err)
	}
	if ts.InfinityModifier != pgtype.NegativeInfinity || d.InfinityModifier != pgtype.NegativeInfinity {
		t.Errorf("5000 BC: timestamp %v (%v), date %v (%v): want -infinity", ts.Time, ts.InfinityModifier, d.Time, d.InfinityModifier)
	}
	if want := time.Date(1500, 3, 1, 12, 0, 0, 0, time.UTC); !ok.Time.Equal(want) {
		t.Errorf("a timestamp within range: %v, want %v", ok.Time, want)
	}
}

// pgx describes a statement before it binds it. A parameter used in an
// expression was described as a NULL, which DuckDB folds away with its
// type ($1::varchar || 'z' came out an int4), and a catalog query with a
// parameter failed at its Describe for the value it lacked.
func TestPG_DescribeTypesParametersAsBound(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeCacheStatement)
	ctx := context.Background()
	var s string
	if err := c.QueryRow(ctx, "SELECT $1::varchar || 'z'", "a").Scan(&s); err != nil || s != "az" {
		t.Errorf("a text parameter in an expression: %q %v", s, err)
	}
	e.send(span{})
	e.flushed()
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM records WHERE duration < $1 LIMIT $2", 10.5, 5).Scan(&n); err != nil || n != 1 {
		t.Errorf("numeric parameters: %d %v", n, err)
	}
	// The '' sample of $1 is no date part: $1 alone is described as NULL.
	var year float64
	if err := c.QueryRow(ctx, "SELECT date_part($1, TIMESTAMP '2024-01-01') AS p, $2::varchar || 'z' AS s", "year", "a").Scan(&year, &s); err != nil || s != "az" || year != 2024 {
		t.Errorf("a parameter whose sample fails beside another: %v %q %v", year, s, err)
	}
	if err := c.QueryRow(ctx, "SELECT typname FROM pg_catalog.pg_type WHERE oid = $1", 1043).Scan(&s); err != nil || s != "varchar" {
		t.Errorf("a catalog query with a parameter: %q %v", s, err)
	}
}

// Parameters that text alone does not bind: arithmetic ($1 + 1 was
// "could not choose a best candidate function"), intervals (pgx could not
// send a time.Duration as text) and the arrays of = ANY($1), each bound as
// pgx sends them, in binary, from Go values.
func TestPG_ParametersOfArithmeticIntervalsAndArrays(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	e.send(span{service: "checkout", start: now.Add(-10 * time.Minute), dur: 3 * time.Millisecond},
		span{service: "cart", start: now.Add(-3 * time.Hour), dur: 5 * time.Millisecond},
		span{service: `we"ird\name`, start: now.Add(-20 * time.Minute), dur: time.Millisecond})
	e.flushed()
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		c := pgConnect(t, startPG(t, e), mode)
		var n int64
		if err := c.QueryRow(ctx, "SELECT $1 + 1", 41).Scan(&n); err != nil || n != 42 {
			t.Errorf("mode %v: $1 + 1: %d %v", mode, n, err)
		}
		for sql, want := range map[string]int64{
			"SELECT count(*) FROM records WHERE service_name = ANY($1)":                     2,
			"SELECT count(*) FROM records WHERE service_name <> ALL($1)":                    1,
			"SELECT count(*) FROM records WHERE service_name = ANY($1::varchar[]) LIMIT $2": 2,
		} {
			args := []any{[]string{"cart", `we"ird\name`, "none"}}
			if strings.Contains(sql, "$2") {
				args = append(args, 10)
			}
			if err := c.QueryRow(ctx, sql, args...).Scan(&n); err != nil || n != want {
				t.Errorf("mode %v: %s: %d %v, want %d", mode, sql, n, err, want)
			}
		}
		if err := c.QueryRow(ctx, "SELECT count(*) FROM records WHERE duration = ANY($1)", []float64{0.003, 0.005, 7}).Scan(&n); err != nil || n != 2 {
			t.Errorf("mode %v: a float8 array: %d %v, want 2", mode, n, err)
		}
		for _, sql := range []string{
			"SELECT count(*) FROM records WHERE start_timestamp > now() - $1",
			"SELECT count(*) FROM records WHERE start_timestamp > now() - $1::interval",
			"SELECT count(*) FROM records WHERE start_timestamp + $1 > now()",
		} {
			if err := c.QueryRow(ctx, sql, time.Hour).Scan(&n); err != nil || n != 2 {
				t.Errorf("mode %v: %s: %d %v, want 2", mode, sql, n, err)
			}
		}
		// A parameter is typed by its first use, as PostgreSQL types it
		// (QA: $1 + $2::interval made $1 an interval, the comparison
		// before it notwithstanding).
		for i := 0; i < 5; i++ { // the tree was walked in map order
			sql := "SELECT count(*) FROM records WHERE start_timestamp >= $1 AND start_timestamp < $1 + $2::interval"
			if err := c.QueryRow(ctx, sql, now.Add(-time.Hour), 2*time.Hour).Scan(&n); err != nil || n != 2 {
				t.Errorf("mode %v: %s: %d %v, want 2", mode, sql, n, err)
			}
		}
		if err := c.QueryRow(ctx, "SELECT count(*) FROM records WHERE duration > $1 * 0.001", 2).Scan(&n); err != nil || n != 2 {
			t.Errorf("mode %v: duration > $1 * 0.001: %d %v, want 2", mode, n, err)
		}
		var none []string
		if err := c.QueryRow(ctx, "SELECT count(*) FROM records WHERE service_name = ANY($1)", none).Scan(&n); err != nil || n != 0 {
			t.Errorf("mode %v: a NULL array: %d %v", mode, n, err)
		}
	}
}

// A SET of the time zone used to be accepted and ignored, so a client took
// its literals for local times while strata read them as UTC (its windows
// off by the offset). UTC can be set; another zone is refused.
func TestPG_TimeZoneCanOnlyBeUTC(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := dialRawPG(t, startPG(t, e))
	for sql, want := range map[string]string{
		"SET TimeZone = 'America/New_York'":              "ErrorResponse(0A000)",
		"SET TIME ZONE 'Asia/Tokyo'":                     "ErrorResponse(0A000)",
		"set timezone to '+02'":                          "ErrorResponse(0A000)",
		"SET TIME ZONE 'UTC'":                            "CommandComplete",
		"SET TimeZone TO 'Etc/UTC'":                      "CommandComplete",
		"SET TIME ZONE LOCAL":                            "CommandComplete",
		"SET application_name = 'x'":                     "CommandComplete",
		"/* c */ SET TIME ZONE 'America/New_York'":       "ErrorResponse(0A000)",
		"-- c\nSET TIME ZONE 'America/New_York'":         "ErrorResponse(0A000)",
		"SET /**/ TIME ZONE 'America/New_York'":          "ErrorResponse(0A000)",
		"SET GLOBAL TimeZone='America/New_York'":         "ErrorResponse(0A000)",
		"SET timezone TO 'UTC' -- c":                     "CommandComplete",
		"SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE": "CommandComplete",
		"SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE": "ErrorResponse(0A000)",
		"SET TimeZone = 'Etc/GMT+0'":                     "CommandComplete",
	} {
		if seen := r.ask(sql); !strings.Contains(seen, want) {
			t.Errorf("%s: %s, want %s", sql, seen, want)
		}
	}
}

// Text dates and timestamps before year 1 went out as 0000-12-31, which
// clients refuse; PostgreSQL writes 0001-12-31 BC.
func TestPG_TextDatesBeforeYearOneAreBC(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeSimpleProtocol) // text results
	ctx := context.Background()
	var ts, d pgtype.Timestamp
	var day pgtype.Date
	if err := c.QueryRow(ctx, "SELECT TIMESTAMP '0001-01-01' - INTERVAL 1 DAY, TIMESTAMP '0001-01-01 12:30:00', DATE '0001-01-01' - 366").Scan(&ts, &d, &day); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC); !ts.Time.Equal(want) {
		t.Errorf("1 BC: %v, want %v", ts.Time, want)
	}
	if want := time.Date(1, 1, 1, 12, 30, 0, 0, time.UTC); !d.Time.Equal(want) {
		t.Errorf("1 AD: %v, want %v", d.Time, want)
	}
	if want := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC); !day.Time.Equal(want) {
		t.Errorf("a date of 1 BC: %v, want %v", day.Time, want)
	}
}

// A date BC written as strata writes it (and PostgreSQL) reads back as BC:
// DuckDB took "0001-12-31 BC" for AD.
func TestPG_TextParametersBCReadBack(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := dialRawPG(t, startPG(t, e))
	for _, c := range []struct{ sql, value string }{
		{"SELECT $1::date = DATE '0001-12-31 (BC)' AS same", "0001-12-31 BC"},
		{"SELECT $1::timestamp = TIMESTAMP '0045-03-15 (BC) 12:00:00' AS same", "0045-03-15 12:00:00 BC"},
		{"SELECT $1::timestamptz = TIMESTAMPTZ '0045-03-15 (BC) 12:00:00+00' AS same", "0045-03-15 12:00:00+00 BC"},
		{"SELECT $1::date = DATE '0044-03-15 (BC)' AS same", "0044-03-15 bc"},
		{"SELECT $1::timestamp = TIMESTAMP '2024-01-01 (BC) 10:00:00' AS same", "2024-01-01T10:00:00 BC"},
		{"SELECT $1::timestamp = TIMESTAMP '0001-01-01 (BC)' AS same", " 0001-01-01   BC "},
		{"SELECT $1::timestamp = TIMESTAMP '0001-01-01 (BC) 12:00:00' AS same", "0001-01-01 12:00:00BC"},
	} {
		r.send(&pgproto3.Parse{Query: c.sql}, &pgproto3.Bind{Parameters: [][]byte{[]byte(c.value)}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var got string
		for {
			m, err := r.fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := m.(*pgproto3.DataRow); ok {
				got = string(d.Values[0])
			}
			if e, ok := m.(*pgproto3.ErrorResponse); ok {
				got = e.Message
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		if got != "t" {
			t.Errorf("%s with %q: %s, want t", c.sql, c.value, got)
		}
	}
}

// The JSON arrows bind as in PostgreSQL, tighter than AND and the
// comparisons, over HTTP and both protocols of the wire (a parameter's
// query is bound through its parse tree).
func TestQuery_JSONArrowsBindLikePostgres(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := range 6 {
		route := "/a"
		if i%3 == 0 {
			route = "/b"
		}
		e.send(span{name: fmt.Sprintf("op-%d", i), route: route, service: "svc"})
	}
	e.flushed()
	q := `SELECT count(*) FROM records WHERE kind = 'span' AND attributes->>'http.route' = '/b'`
	if j := e.do("POST", map[string]any{"sql": q}, "application/json"); j.status != 200 || len(j.Rows) != 1 || num(j.Rows[0][0]) != 2 {
		t.Fatalf("HTTP: %d %v %s", j.status, j.Rows, j.Error)
	}
	// Tables named with the schema psql lists them under, or PostgreSQL's.
	for _, q := range []string{
		`SELECT count(*) FROM public.records WHERE public.records.kind = 'span'`,
		`SELECT count(*) FROM main.records r JOIN "public"."records" p USING (span_id)`,
	} {
		if j := e.do("POST", map[string]any{"sql": q}, "application/json"); j.status != 200 || len(j.Rows) != 1 || num(j.Rows[0][0]) != 6 {
			t.Errorf("qualified names: %s: %d %v %s", q, j.status, j.Rows, j.Error)
		}
	}
	addr := startPG(t, e)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheDescribe} {
		c := pgConnect(t, addr, mode)
		var n int64
		if err := c.QueryRow(context.Background(), `SELECT count(*) FROM records WHERE kind = 'span' AND attributes->>'http.route' = $1 AND attributes->'http.route' IS NOT NULL`, "/a").Scan(&n); err != nil || n != 4 {
			t.Errorf("pgx mode %v: %d, %v", mode, n, err)
		}
	}
}

// Over the Postgres protocol ~, ~*, !~ and !~* match anywhere in the
// text, as PostgreSQL's do (Grafana's regex variables), with a literal or
// a bound pattern.
func TestPG_RegexOperatorsMatchAnywhere(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, name := range []string{"GET /users", "GET /orders", "POST /users"} {
		e.send(span{name: name, route: "/r", service: "svc"})
	}
	e.flushed()
	addr := startPG(t, e)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		c := pgConnect(t, addr, mode)
		for q, want := range map[string]int64{
			`SELECT count(*) FROM records WHERE span_name ~ 'users'`:   2,
			`SELECT count(*) FROM records WHERE span_name ~ '^GET'`:    2,
			`SELECT count(*) FROM records WHERE span_name !~ 'users'`:  1,
			`SELECT count(*) FROM records WHERE span_name ~* 'get'`:    2,
			`SELECT count(*) FROM records WHERE span_name !~* 'USERS'`: 1,
			// Patterns that are not plain literals (review: they matched
			// all of the text, and found nothing).
			`SELECT count(*) FROM records WHERE span_name ~ $$users$$`:              2,
			`SELECT count(*) FROM records WHERE span_name ~ lower('USERS')`:         2,
			`SELECT count(*) FROM records WHERE span_name !~ ('us' || 'ers')`:       1,
			`SELECT count(*) FROM records WHERE span_name ~* service_name`:          0,
			`SELECT count(*) FROM records WHERE 'xx GET /orders yy' ~ span_name`:    1,
			`SELECT count(*) FROM records WHERE attributes->>$$http.route$$ = '/r'`: 3,
		} {
			var n int64
			if err := c.QueryRow(ctx, q).Scan(&n); err != nil || n != want {
				t.Errorf("%v %s: %d, %v; want %d", mode, q, n, err, want)
			}
		}
		var n int64
		if err := c.QueryRow(ctx, `SELECT count(*) FROM records WHERE span_name ~ $1`, "ord").Scan(&n); err != nil || n != 1 {
			t.Errorf("%v: a bound pattern: %d, %v", mode, n, err)
		}
	}
}

func TestPG_CopyToStdout(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	e.send(span{name: "plain", service: "a", route: "/r", start: start},
		span{name: "tab\tnew\nline back\\slash", service: "b", start: start.Add(time.Second)},
		span{name: `comma, "quoted"`, service: "c", route: "", start: start.Add(2 * time.Second)})
	e.flushed()
	addr := startPG(t, e)
	c := pgConnect(t, addr, pgx.QueryExecModeCacheStatement)
	ctx := context.Background()
	copyTo := func(sql string) (string, error) {
		var buf bytes.Buffer
		tag, err := c.PgConn().CopyTo(ctx, &buf, sql)
		if want := "COPY 3"; err == nil && strings.Contains(sql, "FROM records") && tag.String() != want {
			t.Errorf("%s: tag %q", sql, tag)
		}
		return buf.String(), err
	}
	const q = "(SELECT span_name, http_route, service_name FROM records ORDER BY start_timestamp)"
	for _, tc := range []struct{ sql, want string }{
		{"COPY " + q + " TO STDOUT",
			"plain\t/r\ta\n" + `tab\tnew\nline back\\slash` + "\t\\N\tb\n" + `comma, "quoted"` + "\t\\N\tc\n"},
		{"copy " + q + " to stdout with (format csv, header)",
			"span_name,http_route,service_name\nplain,/r,a\n\"tab\tnew\nline back\\slash\",,b\n\"comma, \"\"quoted\"\"\",,c\n"},
		// psql's \copy … with csv header sends the older syntax.
		{"COPY " + q + " TO STDOUT WITH CSV HEADER DELIMITER ';' NULL 'NULL'",
			"span_name;http_route;service_name\nplain;/r;a\n\"tab\tnew\nline back\\slash\";NULL;b\n\"comma, \"\"quoted\"\"\";NULL;c\n"},
		{"COPY " + q + " TO STDOUT (FORMAT csv, FORCE_QUOTE *, QUOTE '''')",
			"'plain','/r','a'\n'tab\tnew\nline back\\slash',,'b'\n'comma, \"quoted\"',,'c'\n"},
		{"COPY records (span_name) TO STDOUT", `comma, "quoted"` + "\nplain\n" + `tab\tnew\nline back\\slash` + "\n"},
		// A header is never force-quoted; a comma or parenthesis as a value
		// is a value.
		{"COPY " + q + " TO STDOUT (FORMAT csv, DELIMITER ',', HEADER, FORCE_QUOTE *, NULL '(')",
			"span_name,http_route,service_name\n\"plain\",\"/r\",\"a\"\n\"tab\tnew\nline back\\slash\",(,\"b\"\n\"comma, \"\"quoted\"\"\",(,\"c\"\n"},
		// \. alone on a line would end the data: quoted only then.
		{`COPY (SELECT '\.' AS a, 1 AS b) TO STDOUT (FORMAT csv)`, "\\.,1\n"},
		{`COPY (SELECT '\.' AS a) TO STDOUT (FORMAT csv)`, "\"\\.\"\n"},
		{`COPY (SELECT 1, 2) TO STDOUT (DELIMITER E'\001')`, "1\x012\n"},
	} {
		got, err := copyTo(tc.sql)
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		if strings.HasPrefix(tc.sql, "COPY records") { // no ORDER BY: compare sorted
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			sort.Strings(lines)
			got = strings.Join(lines, "\n") + "\n"
		}
		if got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.sql, got, tc.want)
		}
	}
	// A catalog query copies as well.
	if got, err := copyTo("COPY (SELECT table_name FROM information_schema.tables WHERE table_name = 'records') TO STDOUT"); err != nil || got != "records\n" {
		t.Errorf("catalog query: %q, %v", got, err)
	}
	// Files and the client's input stay refused; bad options get a clear
	// error; the session goes on.
	for sql, want := range map[string]string{
		"COPY (SELECT 1) TO '/tmp/strata-copy-test'":              "only queries",
		"COPY records FROM STDIN":                                 "only queries",
		"COPY (SELECT 1) TO STDOUT WITH (FORMAT binary)":          "FORMAT binary is not supported",
		"COPY (SELECT 1) TO STDOUT WITH (DELIMITER 'ab')":         "single one-byte character",
		"COPY (SELECT 1) TO STDOUT WITH (FORMAT csv, OIDS)":       `option "oids" is not supported`,
		"COPY (SELECT * FROM read_text('/etc/passwd')) TO STDOUT": "read_text",
		"COPY (SELECT 1) TO STDOUT (DELIMITER 'n')":               "cannot be used in text format",
		`COPY (SELECT 1) TO STDOUT (FORMAT csv, NULL 'a"')`:       "quote must not appear",
		"COPY (SELECT 1) TO STDOUT (FORMAT csv, FORMAT text)":     "conflicting or redundant",
		"COPY (SELECT 1) TO STDOUT WITH ()":                       "option name is missing",
		"COPY (SELECT 1) TO STDOUT (FORMAT csv HEADER)":           "a comma or ) is missing",
		"COPY x.y.z TO STDOUT":                                    "only COPY (query) TO STDOUT and COPY table",
		// The position is in the statement as written.
		"COPY records (nosuch) TO STDOUT":                          "nosuch",
		"COPY (SELECT span_name,\n nosuch FROM records) TO STDOUT": "nosuch",
	} {
		_, err := copyTo(sql)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", sql, err, want)
		}
		var pe *pgconn.PgError
		if want == "nosuch" && (!errors.As(err, &pe) || int(pe.Position) != strings.Index(sql, "nosuch")+1 || strings.Contains(pe.Message, "LINE")) {
			t.Errorf("%s: %v, want position %d and no pointer in the message", sql, err, strings.Index(sql, "nosuch")+1)
		}
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM records").Scan(&n); err != nil || n != 3 {
		t.Errorf("after the errors: %d, %v", n, err)
	}
	// The extended protocol: Describe answers NoData, Execute the COPY data.
	r := dialRawPG(t, addr)
	r.send(&pgproto3.Parse{Name: "c", Query: "COPY (SELECT 1 AS one) TO STDOUT WITH CSV HEADER;"}, &pgproto3.Describe{ObjectType: 'S', Name: "c"},
		&pgproto3.Bind{PreparedStatement: "c"}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
	want := "*pgproto3.ParseComplete *pgproto3.ParameterDescription *pgproto3.NoData *pgproto3.BindComplete *pgproto3.NoData " +
		"*pgproto3.CopyOutResponse *pgproto3.CopyData *pgproto3.CopyData *pgproto3.CopyDone *pgproto3.CommandComplete *pgproto3.ReadyForQuery"
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); got != want {
		t.Errorf("extended COPY:\n got %s\nwant %s", got, want)
	}
	// SHOW by the parameter names drivers use.
	var iso string
	if err := c.QueryRow(ctx, "SHOW transaction_isolation").Scan(&iso); err != nil || iso != "read committed" {
		t.Errorf("SHOW transaction_isolation: %q, %v", iso, err)
	}
}

func TestPG_ErrorsPointIntoTheClientsText(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	for name, mode := range map[string]pgx.QueryExecMode{
		"cached statements": pgx.QueryExecModeCacheStatement,
		"exec":              pgx.QueryExecModeExec,
	} {
		c := pgConnect(t, addr, mode)
		for _, sql := range []string{
			"select span_name from records where service_name = $1 and\n  nosuch > 3",
			"SELECT nosuch FROM records WHERE service_name = $1",
			// Rewritten before DuckDB reads it (the regular expression
			// wrapped, the arrow parenthesised): still the client's place.
			"SELECT 'é' FROM records WHERE span_name ~ 'x' AND attributes->>'k' = $1 AND nosuch > 3",
		} {
			_, err := c.Exec(ctx, sql, "x")
			var pe *pgconn.PgError
			want := utf8.RuneCountInString(sql[:strings.Index(sql, "nosuch")]) + 1
			if !errors.As(err, &pe) || int(pe.Position) != want || strings.Contains(pe.Message, "LINE") || strings.Contains(pe.Message, "LIMIT 0") {
				t.Errorf("%s: %s: got %v (position %d), want position %d", name, sql, err, pe.Position, want)
			}
		}
	}
	// The simple protocol: the position is in the whole text sent, as
	// PostgreSQL gives it, also for a second statement.
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	for _, sql := range []string{"SELECT 1 FROM records WHERE nosuch = 1", "SELECT 1; SELECT span_name FROM records WHERE\n nosuch = 1",
		// The failing line also stands, in a string, before it (review:
		// pointed into the string).
		"SELECT 'select nosuch' AS s;\nselect nosuch\nfrom records"} {
		err := c.PgConn().Exec(ctx, sql).Close()
		var pe *pgconn.PgError
		want := strings.LastIndex(sql, "nosuch") + 1
		// Where the place is ambiguous, no position (the message keeps
		// DuckDB's pointer) rather than a wrong one.
		ambiguous := strings.Count(sql, "nosuch") > 1
		if !errors.As(err, &pe) || int(pe.Position) != want && !(ambiguous && pe.Position == 0) {
			t.Errorf("simple protocol: %s: %v (position %d), want position %d", sql, err, pe.Position, want)
		}
	}
}

// realPostgres connects to the real PostgreSQL of the tests, to compare
// strata's answers with its own.
func realPostgres(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Intervals go out as PostgreSQL's interval (OID 1186), in its text form
// and its binary one: the same as a real PostgreSQL answers.
func TestPG_IntervalsAsPostgreSQLWritesThem(t *testing.T) {
	real := realPostgres(t)
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	cases := []string{
		"'0 seconds'", "'1 day'", "'28.541861 seconds'", "'1 year 2 months 3 days 04:05:06.789'",
		"'-1 day 1 hour'", "'1 day -1 hour'", "'-1 year'", "'25 hours'", "'-1.5 seconds'",
		"'14 months'", "'-14 months'", "'1 month -2 days'", "'-3 days'", "'0.000001 seconds'", "'100 hours 5 minutes'",
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := pgConnect(t, addr, mode)
		for _, lit := range cases {
			q := "SELECT " + lit + "::INTERVAL"
			var wantText, gotText string
			if err := real.QueryRow(ctx, q+"::TEXT").Scan(&wantText); err != nil {
				t.Fatalf("postgres %s: %v", q, err)
			}
			// As text: the simple protocol's only form.
			rows, err := c.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				if oid := rows.FieldDescriptions()[0].DataTypeOID; oid != 1186 {
					t.Errorf("%s: type oid %d, want 1186 (interval)", lit, oid)
				}
				gotText = string(rows.RawValues()[0])
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: %v", lit, err)
			}
			if gotText != wantText {
				t.Errorf("%v %s: text %q, PostgreSQL writes %q", mode, lit, gotText, wantText)
			}
			// Decoded by pgx (binary in the extended protocol).
			var want, got pgtype.Interval
			if err := real.QueryRow(ctx, q).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if err := c.QueryRow(ctx, q).Scan(&got); err != nil || got != want {
				t.Errorf("%v %s: %+v (%v), PostgreSQL %+v", mode, lit, got, err, want)
			}
		}
	}
}

// SET stores what SHOW answers; statement_timeout bounds the session's
// queries; RESET goes back to the start-up values; settings strata fixes
// (the date style) stay as they are.
func TestPG_SessionSettings(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig("postgres://grafana@" + addr + "/strata?sslmode=disable&application_name=dash")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	show := func(name string) string {
		t.Helper()
		var v string
		if err := c.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			t.Fatalf("SHOW %s: %v", name, err)
		}
		return v
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if v := show("application_name"); v != "dash" {
		t.Errorf("application_name from the start-up message: %q", v)
	}
	exec("SET application_name = 'it''s mine'")
	exec("SET extra_float_digits TO 3")
	exec("SET datestyle = 'German'")
	if a, x, d := show("application_name"), show("extra_float_digits"), show("DateStyle"); a != "it's mine" || x != "3" || d != "ISO, MDY" {
		t.Errorf("after SET: application_name %q, extra_float_digits %q, DateStyle %q", a, x, d)
	}
	exec("RESET application_name")
	if v := show("application_name"); v != "dash" {
		t.Errorf("after RESET: %q", v)
	}

	slow := "SELECT count(*) FROM range(100000000) a, range(1000) b"
	for set, want := range map[string]string{"100": "100ms", "'2s'": "2s", "'1.5 min'": "90s", "60000": "1min"} {
		exec("SET statement_timeout = " + set)
		if v := show("statement_timeout"); v != want {
			t.Errorf("SET statement_timeout = %s: SHOW says %q, want %q", set, v, want)
		}
	}
	exec("SET statement_timeout = 100")
	start := time.Now()
	_, err = c.Exec(ctx, slow)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("a query past statement_timeout: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("stopped after %v", took) // the server's own limit is 60 s
	}
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM range(1000)").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("the session after the timeout: %d, %v", n, err)
	}
	for _, bad := range []string{"'soon'", "'5 fortnights'", "-1"} {
		_, err := c.Exec(ctx, "SET statement_timeout = "+bad)
		if !errors.As(err, &pe) || pe.Code != "22023" || !strings.Contains(pe.Message, "statement_timeout") {
			t.Errorf("SET statement_timeout = %s: %v", bad, err)
		}
	}
	exec("RESET ALL")
	if v := show("statement_timeout"); v != "0" {
		t.Errorf("after RESET ALL: statement_timeout %q", v)
	}

	// Settings are transactional: SET LOCAL ends with its transaction, a
	// ROLLBACK undoes the SETs in it, a COMMIT keeps them.
	for _, step := range []struct{ sql, timeout string }{
		{"SET LOCAL statement_timeout = 1000", "0"}, // outside a transaction: no effect
		{"BEGIN", "0"},
		{"SET LOCAL statement_timeout = 1000", "1s"},
		{"COMMIT", "0"},
		{"BEGIN", "0"},
		{"SET statement_timeout = 2000", "2s"},
		{"ROLLBACK", "0"},
		{"BEGIN", "0"},
		{"SET statement_timeout = 3000", "3s"},
		{"SET LOCAL statement_timeout = 4000", "4s"},
		{"COMMIT", "3s"},
	} {
		exec(step.sql)
		if v := show("statement_timeout"); v != step.timeout {
			t.Errorf("after %s: statement_timeout %q, want %q", step.sql, v, step.timeout)
		}
	}
}

// SIMILAR TO matches as in PostgreSQL (an SQL pattern: % and _, a dot
// itself), not as DuckDB's regular expression.
func TestPG_SimilarToAsPostgreSQL(t *testing.T) {
	real := realPostgres(t)
	e := newEnv(t, envOptions{})
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	values := []string{"abc", "a.c", "GET /api/sessions", "x%y", "it's", "[x]", "a\nb", "", "aaa", "ab_c"}
	patterns := []string{"%b%", "a_c", "a.c", "%sessions%", "(GET|POST) /%", "x\\%y", "%''%", "[[]x]",
		"[^a]%", "a%", "a{3}", "a+", "(a|b)*c", "%", "", "a\\_c", "ab\\_c", "_%_", "%.%", "[]x]%", "^a%", "a$",
		"[[:alpha:]_]%", "%[[:digit:]]%", "a#_c' ESCAPE '#", "x#%y' ESCAPE '#", "a\\%' ESCAPE '", "%\\%' ESCAPE '#"}
	for _, v := range values {
		for _, p := range patterns {
			lit := "'" + strings.ReplaceAll(v, "'", "''") + "'"
			q := fmt.Sprintf("SELECT %s SIMILAR TO '%s', %s NOT SIMILAR TO '%s'", lit, p, lit, p)
			var want, wantNot, got, gotNot bool
			if err := real.QueryRow(ctx, q).Scan(&want, &wantNot); err != nil {
				t.Fatalf("postgres %s: %v", q, err)
			}
			if err := c.QueryRow(ctx, q).Scan(&got, &gotNot); err != nil {
				t.Errorf("%s: %v", q, err)
				continue
			}
			if got != want || gotNot != wantNot {
				t.Errorf("%q SIMILAR TO '%s': %v / NOT %v, PostgreSQL %v / %v", v, p, got, gotNot, want, wantNot)
			}
		}
	}
	// Patterns that are not a plain literal are refused, not matched as
	// DuckDB's regular expressions; SIMILAR TO inside an identifier is no
	// operator.
	for _, q := range []string{
		"SELECT 'abcdef' SIMILAR TO 'abc' || 'def'", "SELECT 'abc' SIMILAR TO E'%b%'",
		"SELECT 'abc' SIMILAR TO $$%b%$$", "SELECT 'abc' SIMILAR TO ('%b%')",
	} {
		var pe *pgconn.PgError
		if _, err := c.Exec(ctx, q); !errors.As(err, &pe) || pe.Code != "0A000" {
			t.Errorf("%s: %v", q, err)
		}
	}
	var x, z string
	if err := c.QueryRow(ctx, `SELECT 1 AS "x SIMILAR TO 'y", 'abc' AS z`).Scan(&x, &z); err != nil || z != "abc" {
		t.Errorf("an identifier holding SIMILAR TO: %q %q %v", x, z, err)
	}
}

// SQL cursors, as psql's FETCH_COUNT uses them: DECLARE in a transaction,
// FETCH forward in pages, CLOSE; COMMIT closes what is left.
func TestPG_Cursors(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	run := func(sql string) ([]string, []string, error) {
		t.Helper()
		results, err := c.PgConn().Exec(ctx, sql).ReadAll()
		var tags, rows []string
		for _, r := range results {
			tags = append(tags, r.CommandTag.String())
			for _, row := range r.Rows {
				rows = append(rows, string(row[0]))
			}
		}
		return tags, rows, err
	}
	code := func(err error) string {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code
		}
		return fmt.Sprint(err)
	}
	if _, _, err := run("DECLARE c CURSOR FOR SELECT 1"); code(err) != "25P01" {
		t.Errorf("DECLARE outside a transaction: %v", err)
	}
	steps := []struct{ sql, tags, rows string }{
		{"BEGIN", "BEGIN", ""},
		{"DECLARE c NO SCROLL CURSOR FOR SELECT range FROM range(5) ORDER BY range", "DECLARE CURSOR", ""},
		{"FETCH 2 FROM c", "FETCH 2", "0 1"},
		{"FETCH FORWARD 2 IN c", "FETCH 2", "2 3"},
		{"FETCH ALL c", "FETCH 1", "4"},
		{"FETCH NEXT FROM c", "FETCH 0", ""},
		{`DECLARE "Big" CURSOR FOR SELECT relname FROM pg_class WHERE relname = 'records'`, "DECLARE CURSOR", ""},
		{`FETCH FORWARD 10 FROM "Big"`, "FETCH 1", "records"},
		{"CLOSE c", "CLOSE CURSOR", ""},
		{"DECLARE d CURSOR FOR SELECT 7", "DECLARE CURSOR", ""},
		{"COMMIT", "COMMIT", ""},
	}
	for _, s := range steps {
		tags, rows, err := run(s.sql)
		if err != nil || strings.Join(tags, ",") != s.tags || strings.Join(rows, " ") != s.rows {
			t.Fatalf("%s: tags %v rows %v, %v; want %s / %s", s.sql, tags, rows, err, s.tags, s.rows)
		}
	}
	if _, _, err := run("FETCH d"); code(err) != "34000" {
		t.Errorf("a cursor after COMMIT: %v", err)
	}
	run("BEGIN")
	run("DECLARE e CURSOR FOR SELECT 1")
	for sql, want := range map[string]string{
		"DECLARE e CURSOR FOR SELECT 2": "42P03", // exists; the transaction fails
	} {
		if _, _, err := run(sql); code(err) != want {
			t.Errorf("%s: %v, want %s", sql, err, want)
		}
	}
	run("ROLLBACK")
	run("BEGIN")
	run("DECLARE e CURSOR FOR SELECT 1")
	if _, _, err := run("FETCH BACKWARD 1 FROM e"); code(err) != "55000" {
		t.Errorf("FETCH BACKWARD: %v", err)
	}
	run("ROLLBACK")
	for sql, want := range map[string]string{
		"BEGIN; DECLARE b BINARY CURSOR FOR SELECT 1":     "0A000",
		"BEGIN; DECLARE h CURSOR WITH HOLD FOR SELECT 1":  "0A000",
		"BEGIN; DECLARE x CURSOR FOR SELECT nosuchcolumn": "42703",
		"BEGIN; CLOSE nosuch":                             "34000",
	} {
		if _, _, err := run(sql); code(err) != want {
			t.Errorf("%s: %v, want %s", sql, err, want)
		}
		run("ROLLBACK")
	}

	// Over the extended protocol: CLOSE runs; a cursor's portal executed
	// with a row limit is suspended as any portal, and FETCH goes on.
	r := dialRawPG(t, addr)
	r.send(&pgproto3.Parse{Query: "CLOSE ALL"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); strings.Contains(got, "Error") {
		t.Errorf("CLOSE ALL, extended: %s", got)
	}
	r.ask("BEGIN")
	r.ask("DECLARE c CURSOR FOR SELECT range FROM range(3)")
	r.send(&pgproto3.Execute{Portal: "c", MaxRows: 1}, &pgproto3.Sync{})
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); got != "*pgproto3.DataRow *pgproto3.PortalSuspended *pgproto3.ReadyForQuery" {
		t.Errorf("Execute of a cursor's portal: %s", got)
	}
	if got := r.ask("FETCH ALL FROM c"); got != "*pgproto3.RowDescription *pgproto3.DataRow *pgproto3.DataRow *pgproto3.CommandComplete *pgproto3.ReadyForQuery" {
		t.Errorf("FETCH after Execute: %s", got)
	}
	// A protocol portal cannot take an open cursor's name.
	r.send(&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{DestinationPortal: "c"}, &pgproto3.Sync{})
	if got := strings.Join(r.until("*pgproto3.ReadyForQuery"), " "); !strings.Contains(got, "ErrorResponse(42P03)") {
		t.Errorf("Bind to a cursor's name: %s", got)
	}
	r.ask("ROLLBACK")

	// psql with FETCH_COUNT pages through a result with a cursor.
	psql := findPsql(t)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(psql, "-h", host, "-p", port, "-U", "someone", "-d", "strata", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1")
	cmd.Stdin = strings.NewReader("\\set FETCH_COUNT 2\nSELECT range FROM range(5) ORDER BY range;\n")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "0\n1\n2\n3\n4\n" {
		t.Errorf("psql with FETCH_COUNT: %v\n%s", err, out)
	}
}

// Columns without an alias are named as PostgreSQL names them ("count",
// "?column?"), not after DuckDB's expression text ("count_star()").
func TestPG_ColumnNamesAsPostgreSQL(t *testing.T) {
	real := realPostgres(t)
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	names := func(c *pgx.Conn, q string) string {
		t.Helper()
		rows, err := c.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []string
		for _, f := range rows.FieldDescriptions() {
			out = append(out, f.Name)
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return strings.Join(out, ", ")
	}
	queries := []string{
		"SELECT count(*) FROM (VALUES (1)) v(x)",
		"SELECT sum(x), max(x), x FROM (VALUES (1)) v(x) GROUP BY x",
		"SELECT v.x, x AS named FROM (VALUES (1)) v(x)",
		"SELECT 1 + 1, 1 = 1, 'a' || 'b'",
		"SELECT '1'::int, '2024-01-01'::date, 'x'::text",
		"SELECT x::text FROM (VALUES (1)) v(x)",
		"SELECT CASE WHEN true THEN 1 END",
		"SELECT round(avg(x)), lower('A') FROM (VALUES (1.0)) v(x)",
		"SELECT 1 UNION ALL SELECT 2",
		"SELECT x FROM (VALUES (1)) v(x) UNION SELECT 2",
		"SELECT coalesce(NULL, 1), nullif(1, 2), greatest(1, 2)",
		// The SQL syntax of EXTRACT and TRIM, beside the plain calls.
		"SELECT extract(epoch FROM now()), EXTRACT(hour FROM now())::int, date_part('hour', now()), " +
			"trim(both 'x' FROM 'y'), trim(leading FROM 'y'), trim('y'), ltrim('y'), substring('abc' FROM 2), position('a' IN 'b')",
		"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), percentile_disc(0.5) WITHIN GROUP (ORDER BY x), " +
			"mode() WITHIN GROUP (ORDER BY x), to_char(now(), 'YYYY') FROM (VALUES (1.0)) v(x)",
		"SELECT (SELECT 1 AS a), EXISTS (SELECT 1), (SELECT x FROM (VALUES (1)) v(x)), (SELECT count(*) FROM (VALUES (1)) v(x))",
		// Unquoted names fold to lower case; window functions are named
		// after themselves (QA).
		`SELECT 1 AS Foo, v.X, 2 AS "MiXed", x AS "Y" FROM (VALUES (1)) v(x)`,
		`SELECT 1 AS Total, 'say "Total"' AS s, 2 AS "a""B", 3 AS Ä -- "Foo"`,
		"SELECT row_number() OVER (), lag(x) OVER (ORDER BY x), sum(x) OVER () FROM (VALUES (1)) v(x)",
		"VALUES (1, 'a'), (2, 'b')", "SELECT * FROM (VALUES (1, 2)) v", "SELECT * FROM (VALUES (1, 2)) v(x, y)",
		"SELECT * FROM (SELECT 1 AS A, count(*) FROM (VALUES (1)) w) v",
		// Catalog tables answer through their own path.
		"SELECT count(*), max(nspname) FROM pg_catalog.pg_namespace",
		`SELECT count(*) AS Total, max(nspname) AS "Last" FROM pg_catalog.pg_namespace`,
		// SHOW's column is the setting as PostgreSQL spells it.
		"SHOW timezone", "SHOW TIME ZONE", "SHOW datestyle", "SHOW application_name", "SHOW transaction isolation level",
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := pgConnect(t, addr, mode)
		for _, q := range queries {
			if got, want := names(c, q), names(real, q); got != want {
				t.Errorf("%v %s: columns %s, PostgreSQL names them %s", mode, q, got, want)
			}
		}
	}
	// A portal described after its parameters are bound (pgx's exec
	// mode): the bound text, rewritten, has lost the quotes.
	c := pgConnect(t, addr, pgx.QueryExecModeExec)
	q := `SELECT $1::int AS Foo, $1::int AS "MiXed"`
	var got, want []string
	for _, conn := range []*pgx.Conn{c, real} {
		rows, err := conn.Query(ctx, q, 1)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range rows.FieldDescriptions() {
			out = append(out, f.Name)
		}
		rows.Close()
		got, want = want, out
	}
	if !slices.Equal(got, want) {
		t.Errorf("exec mode %s: columns %v, PostgreSQL names them %v", q, got, want)
	}
	// SHOW's command tag is SHOW.
	for _, conn := range []*pgx.Conn{c, real} {
		if tag, err := conn.Exec(ctx, "SHOW search_path"); err != nil || tag.String() != "SHOW" {
			t.Errorf("SHOW's tag: %q %v", tag.String(), err)
		}
	}
}

// Settings in the start-up message are the session's from the start, as
// in PostgreSQL (review: pgx's statement_timeout=… in the connection
// string and PGOPTIONS='-c statement_timeout=…' were ignored, and a
// query ran to the server's limit); RESET goes back to them.
func TestPG_StartupSettings(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	connect := func(query string) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig("postgres://grafana@" + addr + "/strata?sslmode=disable&" + query)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		return pgx.ConnectConfig(ctx, cfg)
	}
	for query, want := range map[string]string{
		"statement_timeout=150":                             "150ms",
		"options=-c%20statement_timeout%3D2s":               "2s",
		"options=--statement-timeout%3D3s%20-cwork_mem%3D1": "3s",
		"TimeZone=Europe/Berlin&statement_timeout=1min":     "1min", // a fixed setting is ignored, as SET's is
	} {
		c, err := connect(query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		var v, tz string
		if err := c.QueryRow(ctx, "SHOW statement_timeout").Scan(&v); err != nil || v != want {
			t.Errorf("%s: SHOW statement_timeout %q %v, want %q", query, v, err, want)
		}
		if err := c.QueryRow(ctx, "SHOW TimeZone").Scan(&tz); err != nil || tz != "UTC" {
			t.Errorf("%s: SHOW TimeZone %q %v", query, tz, err)
		}
		if _, err := c.Exec(ctx, "SET statement_timeout = 0"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "RESET statement_timeout"); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRow(ctx, "SHOW statement_timeout").Scan(&v); err != nil || v != want {
			t.Errorf("%s: after RESET %q %v, want %q", query, v, err, want)
		}
		if want == "150ms" {
			_, err := c.Exec(ctx, "SELECT count(*) FROM range(100000000) a, range(1000) b")
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "57014" {
				t.Errorf("a query past the start-up statement_timeout: %v", err)
			}
		}
		c.Close(ctx)
	}
	for _, bad := range []string{"statement_timeout=soon", "options=-c%20statement_timeout", "options=-x%20y"} {
		_, err := connect(bad)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "22023" || pe.Severity != "FATAL" {
			t.Errorf("%s: %v, want a FATAL 22023", bad, err)
		}
	}
}

// Lists go as PostgreSQL arrays and JSON as json, so pgx scans them into
// slices and maps, in text (simple protocol) and binary (review: both
// went as text, which pgx refuses to scan into a slice or a map).
func TestPG_ArraysAndJSONScanIntoGoValues(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheDescribe} {
		c := pgConnect(t, addr, mode)
		var (
			ints    []int64
			withNil []*int64
			floats  []float64
			strs    []string
			empty   []int32
			times   []time.Time
			obj     map[string]any
		)
		err := c.QueryRow(ctx, `SELECT [1, 2, 3]::BIGINT[], [7, NULL]::BIGINT[], [0.5, -2]::DOUBLE[], ['a', 'b c', '', 'NULL', 'q"\'],
			[]::INT[], [TIMESTAMPTZ '2026-01-02 03:04:05.123456+00'], '{"k": [1, "x"], "n": null}'::JSON`).
			Scan(&ints, &withNil, &floats, &strs, &empty, &times, &obj)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if fmt.Sprint(ints, floats, strs, len(empty)) != `[1 2 3] [0.5 -2] [a b c  NULL q"\] 0` {
			t.Errorf("%v: %v %v %q %v", mode, ints, floats, strs, empty)
		}
		if len(withNil) != 2 || withNil[0] == nil || *withNil[0] != 7 || withNil[1] != nil {
			t.Errorf("%v: an array with a NULL: %v", mode, withNil)
		}
		if len(times) != 1 || !times[0].Equal(time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)) {
			t.Errorf("%v: timestamps %v", mode, times)
		}
		if fmt.Sprint(obj) != "map[k:[1 x] n:<nil>]" {
			t.Errorf("%v: JSON %v", mode, obj)
		}
	}
}

// Catalog tables DuckDB lacks answer with PostgreSQL's columns and no
// rows (one row of 0 for count(*), not an empty result), and
// pg_namespace has pg_catalog, which psql's tab completion filters tables
// by (review: it completed nothing).
func TestPG_CatalogStandIns(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	for q, want := range map[string]int64{
		"SELECT count(*) FROM pg_extension":                                                    0,
		"SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE state = 'idle'":                0,
		"SELECT count(*) FROM pg_roles WHERE rolname = 'strata' AND NOT rolsuper":              1,
		"SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname IN ('pg_catalog', 'main')": 2,
		`SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm')
			AND substring(pg_catalog.quote_ident(c.relname),1,3)='rec' AND pg_catalog.pg_table_is_visible(c.oid)
			AND c.relnamespace <> (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pg_catalog')`: 1,
	} {
		var n int64
		if err := c.QueryRow(ctx, q).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d %v, want %d", q, n, err, want)
		}
	}
}

// pg_type has PostgreSQL's rows for every type OID strata sends, arrays
// included, so a driver that looks a result column's type up finds it
// (review: text, json and every array were missing).
func TestPG_TypesAsPostgreSQLListsThem(t *testing.T) {
	// The scalar types strata sends and their arrays.
	oids := "16, 17, 20, 21, 23, 25, 114, 700, 701, 1043, 1082, 1083, 1114, 1184, 1186, 1700, " +
		"1000, 1001, 1005, 1007, 1009, 1015, 1016, 1021, 1022, 1115, 1182, 1183, 1185, 1187, 1231, 199"
	answersAsPostgreSQL(t,
		`SELECT oid::int, typname::text, typnamespace::int, typlen::int, typbyval, typtype::text, typcategory::text,
			typispreferred, typdelim::text, typelem::int, typarray::int, typinput::text, typoutput::text, typreceive::text,
			typsend::text, typalign::text, typstorage::text, typnotnull, typbasetype::int, typtypmod, typndims, typcollation::int
			FROM pg_catalog.pg_type WHERE oid IN (`+oids+`) ORDER BY oid`,
		`SELECT t.typname::text, n.nspname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
			WHERE t.oid IN (25, 114, 1016) ORDER BY t.oid`,
		`SELECT e.typname::text FROM pg_type a JOIN pg_type e ON e.oid = a.typelem WHERE a.typname = '_float8'`,
	)
}

// to_char formats times as PostgreSQL's does: each template pattern, its
// cases, FM and TH, quoted text, against a real PostgreSQL in UTC.
func TestPG_ToCharAsPostgreSQL(t *testing.T) {
	times := []string{"TIMESTAMPTZ '2026-03-05 07:08:09.123456+00'", "TIMESTAMPTZ '2024-12-30 23:59:01+00'",
		"TIMESTAMPTZ '2021-01-01 12:00:00+00'", "TIMESTAMP '2026-11-22 13:45:00.5'", "DATE '2026-02-03'"}
	formats := []string{
		"YYYY-MM-DD HH24:MI:SS", "YYYY-MM-DD\"T\"HH24:MI:SS.MS", "HH12:MI AM", "hh12:mi pm", "HH:MI:SS.US a.m.",
		"Day, DD Month YYYY", "FMDay, FMDD FMMonth", "DAY MONTH day month Dy Mon DY MON dy mon",
		"DDD D ID IW IYYY WW W Q CC J", "YYY YY Y IYY IY I", "DDth FMDDth ddth Mon FMDDTH", "Y,YYY", "SSSS SSSSS",
		"yyyy-mm-dd", "TZ tz OF", "\"Week\" IW, \"quarter\" Q", "FMHH24:FMMI", "MMDDYYYY",
	}
	var queries []string
	for _, ts := range times {
		for _, f := range formats {
			queries = append(queries, "SELECT to_char("+ts+", '"+f+"')")
		}
	}
	answersAsPostgreSQL(t, queries...)
}

// PostgreSQL's array literals work where an array is meant: = ANY('{a,b}'),
// '{1,2}'::int[], CAST('…' AS text[]) (review: "UNNEST not supported
// here"); the answers are a real PostgreSQL's.
func TestPG_ArrayLiteralsAsPostgreSQL(t *testing.T) {
	answersAsPostgreSQL(t,
		"SELECT 'a' = ANY('{a,b}'), 'c' = ANY('{a,b}'), 'a' <> ALL('{b, \"c d\"}'), 2 = ANY('{1,2}')",
		"SELECT '{1,2,NULL}'::int[], CAST('{x,\"y z\"}' AS text[]), '{}'::bigint[], '{1.5, 2}'::float8[]",
		"SELECT count(*) FROM (VALUES ('a'), ('b'), ('c')) v(s) WHERE s = ANY('{a,c}')",
		// The array takes the other operand's type (QA: a text column
		// against '{1,2}' failed, and '01' = ANY('{1}') was true).
		"SELECT '01' = ANY('{1}'), '1.0' = SOME('{1,2}'), 2 = ANY('{1,2}'), 2.5::float8 = ANY('{2.5}'), 3 <> ALL('{1,2}'), ('b' <> ALL('{a,NULL}')) IS NULL",
		"SELECT count(*) FROM (VALUES ('1'), ('2'), ('x')) v(s) WHERE s = ANY('{1,2}') OR s != ALL('{1,2,x}')",
	)
}

// PostgreSQL names DuckDB lacks: the jsonb type and date_bin.
func TestPG_JSONBAndDateBinAsPostgreSQL(t *testing.T) {
	answersAsPostgreSQL(t,
		"SELECT ('{\"a\": {\"b\": \"x\"}}'::jsonb)->'a'->>'b', CAST('[1, 2]' AS jsonb)->>1",
		"SELECT date_bin('5 minutes', TIMESTAMPTZ '2026-01-01 00:07:00+00', TIMESTAMPTZ '2001-01-01 00:00:00+00'), "+
			"date_bin(INTERVAL '15 minutes', TIMESTAMPTZ '2026-01-01 00:29:59+00', TIMESTAMPTZ '2026-01-01 00:02:00+00')",
		// current_user is a role pg_roles lists (it was DuckDB's "duckdb").
		"SELECT count(*) FROM pg_roles WHERE rolname = current_user AND rolname = session_user",
		"SELECT current_user = user, current_user = session_user",
	)
}

// PostgreSQL's json and jsonb functions answer as there (they did not
// exist: json_build_object failed with "does not exist").
func TestPG_JSONFunctionsAsPostgreSQL(t *testing.T) {
	answersAsPostgreSQL(t,
		"SELECT json_build_object('a', 1, 'b', 'x', 3, true), jsonb_build_object('n', NULL, 'o', jsonb_build_object('x', 1.5)), json_build_object()",
		"SELECT jsonb_extract_path_text('{\"a\": {\"b\": 2}}'::jsonb, 'a', 'b'), json_extract_path('{\"a\": {\"b\": [1, 2]}}'::json, 'a', 'b'), "+
			"json_extract_path_text('{\"a.b\": 3}'::json, 'a.b'), jsonb_extract_path('{\"a\": {\"b\": {\"c\": [true]}}}'::jsonb, 'a', 'b', 'c')",
		"SELECT jsonb_typeof('{\"a\": 1}'::jsonb), jsonb_typeof('1'::jsonb), json_typeof('\"x\"'::json), json_typeof('null'::json), "+
			"json_typeof('[]'::json), json_typeof('false'::json), json_typeof('1.5'::json), json_typeof(NULL::json)",
		"SELECT k FROM (SELECT jsonb_object_keys('{\"b\": 1, \"a\": 2}'::jsonb) AS k) AS t ORDER BY k",
		"SELECT jsonb_agg(x), json_object_agg(x::text, x) FROM generate_series(0, 2) AS t(x)",
		"SELECT to_jsonb('x'::text), jsonb_array_length('[1, 2, 3]'::jsonb), json_array_length('[]'::json)",
		// Keys are keys, or indexes of arrays: not DuckDB's paths.
		"SELECT json_extract_path('{\"a\": [10, 20]}'::json, 'a', '1'), json_extract_path_text('{\"a\": [\"p\", \"q\"]}'::json, 'a', '0'), "+
			"json_extract_path('{\"/a\": 1}'::json, '/a'), jsonb_extract_path('{\"$\": {\"b\": 1}}'::jsonb, '$', 'b'), "+
			"json_extract_path('{\"a\": 1}'::json, '$') IS NULL, jsonb_extract_path('{\"a\": {\"*\": 1, \"~\": 2}}'::jsonb, 'a', '*'), "+
			"jsonb_extract_path_text('{\"\": 3, \"a~b\": 4}'::jsonb, ''), jsonb_extract_path_text('{\"a~b\": 4}'::jsonb, 'a~b'), "+
			"json_extract_path('{\"a\": {\"b\": 1}}'::json, 'a', NULL) IS NULL",
		// Aggregates with what a call may say.
		"SELECT json_agg(x ORDER BY x DESC), jsonb_agg(DISTINCT x % 2 ORDER BY x % 2), json_agg(x) FILTER (WHERE x > 0), "+
			"jsonb_object_agg(x, x * 2) FROM generate_series(0, 3) AS t(x)",
		// Set-returning, in the select list and in FROM, beside a table.
		"SELECT jsonb_array_elements('[1, \"a\", {\"b\": 2}]'::jsonb), json_array_elements_text('[\"x\", 2, true]'::json)",
		"SELECT e.key, e.value FROM jsonb_each('{\"b\": [1], \"a\": 1}'::jsonb) AS e ORDER BY e.key",
		"SELECT t.id, e.key, e.value FROM (VALUES (1, '{\"a\": 1, \"b\": \"x\"}'::jsonb), (2, '{\"c\": null}'::jsonb)) AS t(id, j), "+
			"jsonb_each_text(t.j) AS e ORDER BY t.id, e.key",
		"SELECT k FROM json_object_keys('{\"b\": 1, \"a\": 2}'::json) AS t(k) ORDER BY k",
		"SELECT value FROM jsonb_array_elements_text('[\"p\", \"q\"]'::jsonb) ORDER BY value",
		// On the catalog's tables too.
		"SELECT json_agg(nspname ORDER BY nspname), json_build_object('n', count(*)) FROM pg_namespace WHERE nspname = 'pg_catalog'",
	)
}

// What the JSON functions refuse, they refuse in PostgreSQL's words.
func TestPG_JSONFunctionErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeSimpleProtocol)
	for q, want := range map[string]string{
		"SELECT json_build_object('a', 1, 'b')":          "argument list must have even number of elements",
		`SELECT '{"a": 1}'::jsonb @> '{"a": 1}garbage'`:  "the right side is not JSON",
		"SELECT x ? y FROM (SELECT 1 AS x, 2 AS y) AS t": "?(INTEGER, INTEGER)",
		"SELECT 'x' @> 'y'":                              "the left side is not JSON",
	} {
		_, err := c.Exec(context.Background(), q)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "@@@") || strings.Contains(err.Error(), "API error") {
			t.Errorf("%s: %v, want an error saying %q", q, err, want)
		}
	}
}

// jsonb's containment and existence operators answer as in PostgreSQL,
// over columns too; over HTTP, @> and <@ work as well (? is DuckDB's
// parameter there).
func TestPG_JSONBOperatorsAsPostgreSQL(t *testing.T) {
	var queries []string
	for _, c := range [][2]string{
		{`{"a": 1, "b": {"c": [1, 2, "x"]}}`, `{"b": {"c": [2]}}`},
		{`{"a": 1, "b": {"c": [1, 2, "x"]}}`, `{"b": {"c": 2}}`},
		{`{"a": 1.0}`, `{"a": 1}`},
		{`{"a": 1}`, `{"a": 1, "b": 2}`},
		{`[1, [2, 3], "x"]`, `[[3], 1]`},
		{`["x", "y"]`, `"x"`},
		{`[["x"]]`, `["x"]`},
		{`"x"`, `["x"]`},
		{`{"a": null}`, `{"a": null}`},
		{`{}`, `{}`},
		{`[]`, `{}`},
	} {
		queries = append(queries, fmt.Sprintf("SELECT '%s'::jsonb @> '%s'::jsonb, '%[2]s'::jsonb <@ '%[1]s'::jsonb", c[0], c[1]))
	}
	for _, j := range []string{`{"a": 1, "b": 2}`, `["a", "c", 1]`, `"a"`, `1`, `{"c": {"a": 1}}`} {
		queries = append(queries, fmt.Sprintf("SELECT '%s'::jsonb ? 'a', '%[1]s'::jsonb ?| array['x', 'a'], '%[1]s'::jsonb ?& array['a', 'c'], "+
			"'%[1]s'::jsonb ?& array[]::text[], '%[1]s'::jsonb ? 'it''s ?'", j))
	}
	queries = append(queries, `SELECT '["a"]'::jsonb ?| '{a,b}', '["a"]'::jsonb ?& '{a,b}', '{"n": 1e400}'::jsonb ? 'n', '[1e400]'::jsonb @> '[1e400]'`)
	queries = append(queries, `SELECT count(*) FILTER (WHERE j ? 'a' AND NOT j @> '{"a": 2}'), count(*) FILTER (WHERE j ?| array['b']) `+
		`FROM (VALUES ('{"a": 1}'::jsonb), ('{"a": 2}'::jsonb), ('{"b": 1}'::jsonb), (NULL::jsonb)) AS t(j)`)
	answersAsPostgreSQL(t, queries...)

	// Parameters of ?| and ?& are text[], as PostgreSQL types them, and
	// one cast to jsonb or json is JSON: pgx encodes a map for it.
	e := newEnv(t, envOptions{})
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec} {
		c := pgConnect(t, startPG(t, e), mode)
		var needle, other any = map[string]any{"b": []int{3}}, map[string]any{"c": 1}
		if mode == pgx.QueryExecModeExec { // no types asked for: pgx cannot encode a map (nor for PostgreSQL)
			needle, other = `{"b": [3]}`, `{"c": 1}`
		}
		var anyOf, allOf, contains, in bool
		err := c.QueryRow(context.Background(), `SELECT '{"a": 1}'::jsonb ?| $1, '{"a": 1}'::jsonb ?& $2, `+
			`'{"a": 1, "b": [2, 3]}'::jsonb @> $3::jsonb, $4::json <@ '{"a": 1, "b": [2, 3]}'::jsonb`,
			[]string{"x", "a"}, []string{"a", "x"}, needle, other).Scan(&anyOf, &allOf, &contains, &in)
		if err != nil || !anyOf || allOf || !contains || in {
			t.Errorf("%v: ?| %v, ?& %v, @> %v, <@ %v, %v", mode, anyOf, allOf, contains, in, err)
		}
	}
	// Over spans' attributes: which keys there are, and a filter.
	e.send(span{route: "/a"}, span{route: "/b"}, span{})
	e.flushed()
	keys := e.query(`SELECT kv.key, kv.value, count(*) AS n FROM records, jsonb_each_text(records.attributes) AS kv ` +
		`WHERE kind = 'span' GROUP BY ALL ORDER BY kv.value`)
	if got := fmt.Sprint(keys.Rows); got != "[[http.route /a 1] [http.route /b 1]]" {
		t.Errorf("attribute keys of spans: %s", got)
	}
	if n := e.count(`SELECT count(*) FROM records WHERE attributes @> '{"http.route": "/b"}'`); n != 1 {
		t.Errorf("@> over spans: %d, want 1", n)
	}
	out := e.query(`SELECT '{"a": {"b": 1}}'::JSON @> '{"a": {}}', '[1]'::JSON <@ '[1, 2]', [1, 2] @> [2]`)
	if got := fmt.Sprint(out.Rows); got != "[[true true true]]" {
		t.Errorf("over HTTP: %s", got)
	}
}

// answersAsPostgreSQL runs each query on a real PostgreSQL (in UTC, as
// strata is) and on strata, in the simple and the extended protocol, and
// compares all their rows; a query PostgreSQL answers with no row fails.
func answersAsPostgreSQL(t *testing.T, queries ...string) {
	t.Helper()
	real := realPostgres(t)
	ctx := context.Background()
	if _, err := real.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	rowsOf := func(c *pgx.Conn, q string) (string, error) {
		rows, err := c.Query(ctx, q)
		if err != nil {
			return "", err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return "", err
			}
			out = append(out, fmt.Sprint(vals...))
		}
		return strings.Join(out, "\n"), rows.Err()
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := pgConnect(t, addr, mode)
		for _, q := range queries {
			want, err := rowsOf(real, q)
			if err != nil || want == "" {
				t.Fatalf("PostgreSQL: %s: %q %v", q, want, err)
			}
			got, err := rowsOf(c, q)
			if err != nil {
				t.Errorf("%v %s: %v", mode, q, err)
			} else if got != want {
				t.Errorf("%v %s:\n got %q\nwant %q", mode, q, got, want)
			}
		}
	}
}

// A parameter that is a function's argument is typed as the function
// takes it: to_timestamp($1) a double, time_bucket($1, …) an interval
// (review: they were text, and pgx refuses to send an int64 as text).
func TestPG_FunctionArgumentsTypeTheirParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeCacheDescribe} {
		c := pgConnect(t, addr, mode)
		var ts, bucket time.Time
		err := c.QueryRow(ctx, "SELECT to_timestamp($1), time_bucket($2, TIMESTAMPTZ '2026-01-01 00:07:00+00')",
			int64(1795550400), 5*time.Minute).Scan(&ts, &bucket)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if !ts.Equal(time.Unix(1795550400, 0)) || !bucket.Equal(time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)) {
			t.Errorf("%v: to_timestamp %v, time_bucket %v", mode, ts, bucket)
		}
	}
}

// A named statement is not silently replaced by another Parse of its name
// (42P05, as in PostgreSQL); DEALLOCATE, DEALLOCATE ALL and DISCARD ALL
// free names, as drivers' statement caches expect; the unnamed statement
// is replaced freely.
func TestPG_StatementNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	c := pgConnect(t, addr, pgx.QueryExecModeCacheStatement)
	pc := c.PgConn()
	prepare := func(name, sql string) error {
		_, err := pc.Prepare(ctx, name, sql, nil)
		return err
	}
	if err := prepare("s1", "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	var pe *pgconn.PgError
	if err := prepare("s1", "SELECT 2"); !errors.As(err, &pe) || pe.Code != "42P05" {
		t.Fatalf("a second Parse of s1: %v, want 42P05", err)
	}
	for _, free := range []string{"DEALLOCATE s1", `DEALLOCATE PREPARE "s1"`, "DEALLOCATE ALL", "DISCARD ALL"} {
		if _, err := c.Exec(ctx, free); err != nil {
			t.Fatalf("%s: %v", free, err)
		}
		if err := prepare("s1", "SELECT 3"); err != nil {
			t.Fatalf("Parse of s1 after %s: %v", free, err)
		}
	}
	for range 2 {
		if err := prepare("", "SELECT 4"); err != nil {
			t.Fatalf("the unnamed statement: %v", err)
		}
	}
	// pgx's own statement cache, through its deallocations, still works.
	for i := range 3 {
		var n int64
		if err := c.QueryRow(ctx, "SELECT $1::BIGINT + 1", int64(i)).Scan(&n); err != nil || n != int64(i+1) {
			t.Fatalf("cached statement: %d %v", n, err)
		}
	}
	if err := c.DeallocateAll(ctx); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := c.QueryRow(ctx, "SELECT $1::BIGINT + 1", int64(5)).Scan(&n); err != nil || n != 6 {
		t.Fatalf("after DeallocateAll: %d %v", n, err)
	}
}

// What QA found answering otherwise than PostgreSQL: . in a regular
// expression matches a newline; a key of -> and ->> that starts with $ or
// / is a key, not a path; numeric without a precision keeps small values
// (DuckDB's is DECIMAL(18,3): 0.0003 came back 0.000).
func TestPG_KeysRegexAndNumericAsPostgreSQL(t *testing.T) {
	answersAsPostgreSQL(t,
		`SELECT E'a\nb' ~ 'a.b', E'A\nb' ~* 'a.b', E'a\nb' !~ 'a.b', E'x\nab' ~ '^ab'`,
		`SELECT '{"/a/b": 9, "a": {"b": 3}}'::jsonb->>'/a/b', '{"$.a": 5, "a": {"b": 3}}'::jsonb->>'$.a', `+
			`'{"$y": 2}'::jsonb->'$y', '{"": 1}'::jsonb->>'', '{"a/b~": 4}'::json->>'a/b~'`,
		`SELECT key, value FROM jsonb_each_text('{"/a": 1, "a": 3, "$t": "x"}') ORDER BY key`,
		`SELECT key, value::text FROM json_each('{"$ref": [1], "~/": null}') ORDER BY key`,
		// A double here, so compared as one: the values are PostgreSQL's.
		`SELECT round(avg(x)::numeric, 4)::float8, round(CAST(sum(x) AS numeric), 5)::float8, (123456789012345::numeric)::float8 `+
			`FROM (VALUES (0.0001::float8), (0.0005::float8)) t(x)`,
		// float is a double, as in PostgreSQL (QA: DuckDB's 4-byte float).
		`SELECT 16777217::float, 10::float / 3, CAST(1 AS float) / 7`,
	)
	real := realPostgres(t)
	e := newEnv(t, envOptions{})
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeCacheStatement)
	ctx := context.Background()
	// A parameter the client types numeric is a number (it was text:
	// "Could not choose a best candidate function"); an integer one
	// that is not an integer is refused (DuckDB's cast rounded 1.5 to 2).
	for _, p := range []struct {
		sql   string
		oid   uint32
		value string
	}{
		{"SELECT 2.0::float8 * $1", 1700, "2.5"},
		{"SELECT $1 + 1", 1700, "2.5"},
		{"SELECT $1 * 2", 0, "1.5"},
		{"SELECT $1 * 2", 20, " 7"},
		{"SELECT $1 * 2", 21, "70000"},
	} {
		answer := func(c *pgx.Conn) string {
			res := c.PgConn().ExecParams(ctx, p.sql, [][]byte{[]byte(p.value)}, []uint32{p.oid}, nil, nil).Read()
			var pe *pgconn.PgError
			if errors.As(res.Err, &pe) {
				return "error " + pe.Code
			}
			if res.Err != nil || len(res.Rows) != 1 {
				return fmt.Sprintf("%v %d rows", res.Err, len(res.Rows))
			}
			return string(res.Rows[0][0])
		}
		if got, want := answer(c), answer(real); got != want {
			t.Errorf("%s with %q (type %d): %s, PostgreSQL %s", p.sql, p.value, p.oid, got, want)
		}
	}
}

// pg_attribute holds PostgreSQL's type OIDs for strata's columns, under
// the table OIDs pg_class and regclass give, so a JDBC tool's column
// listing (pg_class ⋈ pg_attribute ⋈ pg_type) finds every column with
// the type information_schema names (QA: DuckDB's type ids lost 12 of
// records' 54 columns and made duration an int4).
func TestPG_CatalogColumnsCarryPostgreSQLTypes(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	columns := func(q string) []string {
		rows, err := c.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var table, col, typ string
			err := r.Scan(&table, &col, &typ)
			return table + "." + col + " " + typ, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	jdbc := columns(`SELECT c.relname::text, a.attname::text, t.typname::text FROM pg_catalog.pg_namespace n
		JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
		JOIN pg_catalog.pg_type t ON a.atttypid = t.oid
		WHERE c.relkind IN ('r', 'p', 'v', 'f', 'm') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum`)
	info := columns(`SELECT table_name::text, column_name::text, udt_name::text FROM information_schema.columns
		WHERE table_name IN ('records', 'metrics') ORDER BY table_name, ordinal_position`)
	if len(jdbc) < 60 || !slices.Equal(jdbc, info) {
		t.Fatalf("pg_attribute's columns and types (%d):\n%v\ninformation_schema's (%d):\n%v", len(jdbc), jdbc, len(info), info)
	}
	var same, n int
	var reg any
	if err := c.QueryRow(ctx, `SELECT count(*) FILTER (WHERE c.oid = 'records'::regclass AND c.oid = to_regclass('main.records')),
		count(*) FROM pg_class c WHERE relname = 'records'`).Scan(&same, &n); err != nil || same != 1 || n != 1 {
		t.Errorf("records' OID by regclass and to_regclass: %d of %d, %v", same, n, err)
	}
	err := c.QueryRow(ctx, `SELECT 'nope'::regclass`).Scan(&reg)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42P01" {
		t.Errorf("a relation that does not exist: %v, want 42P01", err)
	}
}

// The alias of a one-column set-returning function in FROM names its
// column, as in PostgreSQL (QA: e was the row, {"value":"1"}).
func TestPG_OneColumnFunctionAliasesAsPostgreSQL(t *testing.T) {
	answersAsPostgreSQL(t,
		`SELECT e FROM json_array_elements_text('["1", "x"]') e`,
		`SELECT e::text FROM jsonb_array_elements('[1, "x"]') AS e`,
		`SELECT k FROM json_object_keys('{"b": 1, "a": 2}') k ORDER BY k`,
		`SELECT g, g * 2 FROM generate_series(1, 3) g`,
		`SELECT u FROM unnest(ARRAY[5, 6]) AS u ORDER BY u DESC`,
		`SELECT x.g FROM generate_series(1, 2) AS x(g)`,
		`SELECT count(*) FROM (VALUES ('[1, 2]'), ('[3]')) v(j), json_array_elements_text(v.j::json) e WHERE e::int > 1`,
		// The text is edited, not deparsed: literals keep their types
		// (review: 100000. became an integer and the product overflowed).
		`SELECT g, (100000. * 100000.)::float8, 1e2::float8 FROM generate_series(1, 1) AS "g"`,
		`SELECT n FROM pg_catalog.unnest(ARRAY['a']) n`,
	)
}

// current_setting gives the session's settings, as SHOW does (QA: only
// the values strata fixes; application_name failed after a SET).
func TestPG_CurrentSettingReadsTheSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := pgConnect(t, addr, mode)
		if _, err := c.Exec(ctx, "SET application_name = 'x y'"); err != nil {
			t.Fatal(err)
		}
		var app, timeout, zone string
		if err := c.QueryRow(ctx, "SELECT current_setting('application_name'), current_setting('statement_timeout'), pg_catalog.current_setting('TimeZone')").
			Scan(&app, &timeout, &zone); err != nil || app != "x y" || timeout != "0" || zone != "UTC" {
			t.Errorf("%v: %q %q %q, %v", mode, app, timeout, zone, err)
		}
		// Named as PostgreSQL names it; a quoted name is no call (review).
		rows, err := c.Query(ctx, `SELECT current_setting('application_name'), 1 AS "current_setting('TimeZone')"`)
		if err != nil {
			t.Fatal(err)
		}
		f := rows.FieldDescriptions()
		rows.Close()
		if len(f) != 2 || f[0].Name != "current_setting" || f[1].Name != "current_setting('TimeZone')" {
			t.Errorf("%v: columns %v", mode, f)
		}
	}
}

// Numbers and times of day are sent as PostgreSQL writes them in text
// (QA: a real of 1234567 was sent as 1234567, PostgreSQL writes
// 1.234567e+06; a time was text, 01:02:03.000000), and typed as there.
func TestPG_FloatAndTimeTextAsPostgreSQL(t *testing.T) {
	real := realPostgres(t)
	e := newEnv(t, envOptions{})
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	q := "SELECT 1234567::float4, 123456::float4, 0.0001::float4, 0.00001::float4, 1.5::float4, " +
		"1e15::float8, 123456789012345::float8, 0.0001::float8, 0.00001::float8, 1.5::float8, " +
		"'01:02:03'::time, '01:02:03.5'::time, '23:59:59.000123'::time"
	text := func(c *pgx.Conn) string {
		res, err := c.PgConn().Exec(ctx, q).ReadAll()
		if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
			t.Fatalf("%s: %v", q, err)
		}
		return string(bytes.Join(res[0].Rows[0], []byte(" ")))
	}
	if got, want := text(c), text(real); got != want {
		t.Errorf("%s:\n got %s\nwant %s", q, got, want)
	}
	answersAsPostgreSQL(t, "SELECT '01:02:03.25'::time, t FROM (VALUES ('00:00:00'::time), ('12:34:56.000789'::time)) v(t)")
}

// What SQL tools ask when they connect and list schemas (QA, from pgjdbc,
// DBeaver, pgAdmin, Metabase and psql), with and without parameters.
func TestPG_ToolCatalogQueries(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := startPG(t, e)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		c := pgConnect(t, addr, mode)
		for _, q := range []struct {
			sql  string
			args []any
			want string
		}{
			// A parameter made the query bound and deparsed, and the casts
			// and names the catalog rewrites were missed.
			{"SELECT 'pg_class'::regclass::int FROM pg_class WHERE oid = $1", []any{16385}, "1259"},
			{"SELECT data_type || ' ' || udt_schema || '.' || udt_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = $1 AND column_name = 'start_timestamp'",
				[]any{"records"}, "timestamp with time zone pg_catalog.timestamptz"},
			{"SELECT count(*) FROM pg_database WHERE datname = current_database()", nil, "1"},
			{"SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() AND table_name IN ('records', 'metrics')", nil, "2"},
			{"SELECT format_type(25, -1) || ', ' || format_type(1184, NULL) || ', ' || format_type(1009, -1)", nil, "text, timestamp with time zone, text[]"},
			{"SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relkind = 'r'", nil, "metrics,records"},
			{"SELECT pg_catalog.pg_roles.rolname FROM pg_catalog.pg_roles", nil, "strata"},
			{"SELECT coalesce(pg_get_expr(NULL, 0, true), pg_get_indexdef(1), obj_description(1), 'none') FROM pg_namespace LIMIT 1", nil, "none"},
			{"SELECT count(*) FROM pg_auth_members", nil, "0"},
			// No user functions (psql's \df listed strata's macros).
			{"SELECT count(*) FILTER (WHERE n.nspname = 'main')::text || ' ' || (count(*) FILTER (WHERE p.proname = 'json_build_object') > 0)::text " +
				"FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace", nil, "0 true"},
			{"SELECT string_agg(t.tablename || ':' || t.tableowner || ':' || r.rolname, ',' ORDER BY t.tablename) FROM pg_tables t " +
				"JOIN pg_namespace n ON n.nspname = t.schemaname JOIN pg_roles r ON r.oid = n.nspowner", nil, "metrics:strata:strata,records:strata:strata"},
			{"SELECT has_table_privilege('records', 'SELECT')::text || has_table_privilege('strata', 'main.metrics', 'update')::text || has_table_privilege('records', 'INSERT, select')::text", nil, "truefalsetrue"},
			{"SELECT array_to_string(current_schemas(false), ',') || ' ' || array_to_string(current_schemas(true), ',')", nil, "main pg_catalog,main"},
		} {
			var got any
			if err := c.QueryRow(ctx, q.sql, q.args...).Scan(&got); err != nil || fmt.Sprint(got) != q.want {
				t.Errorf("%v: %s: %v, %v; want %s", mode, q.sql, got, err, q.want)
			}
		}
	}
	answersAsPostgreSQL(t, `SELECT 'span_id' LIKE 'span\_%', 'spanxid' LIKE 'span\_%', 'a_b' NOT ILIKE E'A\\_B'`)
	// pgjdbc's getPrimaryKeys: no keys, no error (_pg_expandarray).
	c := pgConnect(t, addr, pgx.QueryExecModeExec)
	rows, err := c.Query(ctx, `SELECT result.TABLE_CAT, result.TABLE_SCHEM, result.TABLE_NAME, result.COLUMN_NAME, result.KEY_SEQ, result.PK_NAME FROM
		(SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME,
		(information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME,
		information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM
		FROM pg_catalog.pg_class ct JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)
		JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid) JOIN pg_catalog.pg_index i ON (a.attrelid = i.indrelid)
		JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) WHERE true AND ct.relname = $1 AND i.indisprimary) result
		WHERE result.A_ATTNUM = (result.KEYS).x ORDER BY result.table_name, result.pk_name, result.key_seq`, "records")
	if err != nil {
		t.Fatalf("getPrimaryKeys: %v", err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 0 {
		t.Errorf("getPrimaryKeys: %d rows, %v", n, err)
	}
}

// Lambdas whose body starts with a literal run as lambdas over HTTP and
// the Postgres protocol, not as JSON arrows (QA: x -> 2 * x failed with
// "column x not found").
func TestLambdasAreNotJSONArrows(t *testing.T) {
	e := newEnv(t, envOptions{})
	q := `SELECT list_transform([1, 2, 3], x -> 2 * x)::text, list_filter([1, 2, 3], x -> 1 < x)::text,
		list_reduce([1, 2, 3], (a, b) -> 0 + a + b)::text, list_transform(['a'], x -> '$' || x)::text`
	want := "[2, 4, 6] [2, 3] 6 [$a]"
	r := e.query(q)
	if got := fmt.Sprintln(r.Rows[0]...); got != want+"\n" {
		t.Errorf("HTTP: %s, want %s", got, want)
	}
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeSimpleProtocol)
	var a, b, s, d string
	if err := c.QueryRow(context.Background(), q).Scan(&a, &b, &s, &d); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(a, " ", b, " ", s, " ", d); got != want {
		t.Errorf("Postgres protocol: %s, want %s", got, want)
	}
}

// div and the bounds of an array, which histogram queries written for
// PostgreSQL use (QA: "array_upper does not exist").
func TestPG_DivAndArrayBoundsAsPostgreSQL(t *testing.T) {
	answersAsPostgreSQL(t,
		"SELECT div(7, 2)::int, div(-7, 2)::int, div(7.5, 2)::int, div(count(*), 2)::int FROM (VALUES (1), (2), (3)) v(x)",
		"SELECT array_lower(ARRAY[5, 6, 7], 1), array_upper(ARRAY[5, 6, 7], 1), array_upper(ARRAY[5], 2), "+
			"array_upper('{}'::int[], 1) IS NULL, array_lower('{}'::int[], 1) IS NULL",
		"SELECT i, (ARRAY[10, 20, 30])[i] FROM generate_series(array_lower(ARRAY[10, 20, 30], 1), array_upper(ARRAY[10, 20, 30], 1)) g(i) ORDER BY i",
	)
}

// A jsonb is a value: equal values compare equal and print alike, as
// PostgreSQL prints them (QA: '{"host": "a"}'::jsonb, as PostgreSQL
// prints it, matched no row).
func TestPG_JSONBValuesAsPostgreSQL(t *testing.T) {
	answersAsPostgreSQL(t,
		`SELECT '{"host": "a"}'::jsonb = '{"host":"a"}'::jsonb, '{"a":1,"b":2}'::jsonb = '{"b":2,"a":1}'::jsonb, '{"a":1}'::jsonb = '{"a":2}'::jsonb`,
		`SELECT '{"bb":1,"a":[1.0,1e2,-0,"x\ny\u0001é"],"c":{},"a":true, "d": null}'::jsonb::text, CAST('[ 1 , {"z":2,"y":[]}]' AS jsonb)::text`,
		`SELECT count(DISTINCT x::jsonb), min(x::jsonb::text) FROM (VALUES ('{"a": 1, "b": [2]}'), ('{"b":[2],"a":1}')) v(x)`,
		`SELECT x::jsonb = '{"b": [2], "a":1}', x::jsonb <> '{"a":1}' FROM (VALUES ('{"a": 1, "b": [2]}')) v(x)`,
		`SELECT x::jsonb @> '{"a":1}', x::jsonb ? 'b', x::jsonb->>'a' FROM (VALUES ('{"b":[2],"a":1}')) v(x)`,
	)
}

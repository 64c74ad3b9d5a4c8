package sql_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine/schema"
)

// otherProjectFile puts one span of project "other" into the object store
// and catalog, and returns its local path: a file the default project's
// queries must never read.
func otherProjectFile(t *testing.T, e *env) string {
	t.Helper()
	ctx := context.Background()
	if err := e.cat.CreateProject(ctx, catalog.Project{ID: "other"}); err != nil {
		t.Fatal(err)
	}
	// Ingest a span for default, flush it, and copy its file to other's prefix.
	e.send(span{name: "secret of other"})
	e.flushed()
	files, _ := e.cat.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: schema.Records})
	data, err := e.bucket.Get(ctx, files[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	key := "other/" + strings.TrimPrefix(files[0].Key, "default/")
	if err := e.bucket.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	f := files[0]
	f.Key, f.Project = key, "other"
	if err := e.cat.RegisterFiles(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.TombstoneFiles(ctx, files[0].Key); err != nil {
		t.Fatal(err)
	}
	p, _ := e.bucket.LocalPath(key)
	return p
}

func TestSandbox_AttacksFailWithAClearError(t *testing.T) {
	e := newEnv(t, envOptions{queryTimeout: 2 * time.Second})
	other := otherProjectFile(t, e)
	e.send(span{name: "mine"})
	e.flushed()
	outside := t.TempDir()
	attacks := []struct{ sql, want string }{
		{"SELECT * FROM read_csv('/etc/passwd')", "table function read_csv is not allowed"},
		{"SELECT * FROM read_csv_auto('/etc/passwd')", "not allowed"},
		{"SELECT * FROM read_parquet('" + other + "')", "table function read_parquet is not allowed"},
		{"SELECT * FROM read_text('/etc/passwd')", "not allowed"},
		{"SELECT * FROM read_blob('/etc/passwd')", "not allowed"},
		{"SELECT * FROM read_json_auto('/etc/passwd')", "not allowed"},
		{"SELECT * FROM glob('/*')", "table function glob is not allowed"},
		{"SELECT * FROM '/etc/passwd'", "is not available"},
		{"SELECT * FROM '" + other + "'", "is not available"},
		{"SELECT * FROM parquet_metadata('" + other + "')", "not allowed"},
		{"SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')", "table function query is not allowed"},
		{"SELECT * FROM sqlite_scan('" + filepath.Join(outside, "x.db") + "', 't')", "not allowed"},
		{"SELECT * FROM duckdb_settings()", "not allowed"},
		{"SELECT * FROM __strata_fresh_records", "is not available"},
		{"SELECT * FROM temp.main.records", "is not available"},
		{"SELECT * FROM system.main.duckdb_settings", "is not available"},
		{"WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x", "not allowed"},
		{"SELECT (SELECT count(*) FROM read_text('/etc/passwd'))", "not allowed"},
		{"SELECT * FROM records WHERE message IN (SELECT content FROM read_text('/etc/passwd'))", "not allowed"},
		{"COPY (SELECT * FROM records) TO '" + filepath.Join(outside, "out.csv") + "'", "only queries"},
		{"EXPORT DATABASE '" + outside + "'", "only queries"},
		{"ATTACH '" + filepath.Join(outside, "x.db") + "' AS x", "only queries"},
		{"DETACH x", "only queries"},
		{"INSTALL httpfs", "only queries"},
		{"LOAD httpfs", "only queries"},
		{"SET memory_limit = '100GB'", "only queries"},
		{"RESET threads", "only queries"},
		{"PRAGMA memory_limit = '1TB'", "only queries"},
		{"CALL pragma_version()", "only queries"},
		{"SELECT getenv('HOME')", "function getenv is not allowed"},
		{"SELECT current_setting('allowed_directories')", "function current_setting is not allowed"},
		{"CREATE TABLE t AS SELECT 1", "only queries"},
		{"CREATE OR REPLACE TEMP VIEW records AS SELECT 1", "only queries"},
		{"CREATE MACRO m(x) AS x", "only queries"},
		{"SELECT 1; DROP VIEW records", "only queries"},
		{"SELECT 1; SELECT 2", "one query at a time"},
		{"SELECT * FROM records; SELECT * FROM read_csv('/etc/passwd')", "one query at a time"},
		{"CHECKPOINT", "only queries"},
		{"USE memory", "only queries"},
		// A CTE's name is a table only in its own scope: declared in a
		// subquery, it must not let the outer query name a file or a
		// system view of the same name.
		{`SELECT count(*) FROM '` + other + `', (WITH "` + other + `" AS (SELECT 1) SELECT 1)`, "is not available"},
		{`SELECT * FROM duckdb_views, (WITH duckdb_views AS (SELECT 1) SELECT 1)`, `table "duckdb_views" is not available`},
		{`WITH a AS (SELECT * FROM duckdb_databases), duckdb_databases AS (SELECT 1) SELECT * FROM a`, `table "duckdb_databases" is not available`},
		{`WITH duckdb_tables AS (SELECT * FROM duckdb_tables) SELECT * FROM duckdb_tables`, `table "duckdb_tables" is not available`},
		// A recursive CTE's name is itself only in its recursive term.
		{`WITH RECURSIVE "` + other + `" AS (SELECT span_name FROM '` + other + `' UNION SELECT 'x') SELECT * FROM "` + other + `"`, "is not available"},
		{`WITH "` + other + `" AS (SELECT span_name FROM '` + other + `', (WITH RECURSIVE t AS (SELECT 1 UNION SELECT 1) SELECT 1) z) SELECT * FROM "` + other + `"`, "is not available"},
		{`WITH RECURSIVE duckdb_tables AS (SELECT * FROM duckdb_tables UNION SELECT * FROM duckdb_tables) SELECT 1`, `table "duckdb_tables" is not available`},
		{"SHOW ALL TABLES", "SHOW of tables and databases is not available"},
		{"SHOW DATABASES", "SHOW of tables and databases is not available"},
		{"DESCRIBE SELECT * FROM read_text('/etc/passwd')", "not allowed"},
		// Built-in macros whose bodies read system tables, and a CTE whose
		// name only Unicode folding makes a system view's (KELVIN SIGN).
		{"SELECT pg_get_viewdef(x) FROM range(0, 100000) t(x), records", "function pg_get_viewdef is not allowed"},
		{"SELECT format_type(x, 0) FROM range(0, 100) t(x)", "function format_type is not allowed"},
		{"SELECT get_block_size('memory')", "function get_block_size is not allowed"},
		{"SELECT pg_get_constraintdef(1)", "function pg_get_constraintdef is not allowed"},
		{"WITH \"duc\u212adb_views\" AS (SELECT 1) SELECT sql FROM duckdb_views", `table "duckdb_views" is not available`},
	}
	if len(attacks) < 25 {
		t.Fatalf("the corpus must hold at least 25 attempts")
	}
	for _, a := range attacks {
		r := e.do("POST", map[string]any{"sql": a.sql}, "")
		if r.status != http.StatusBadRequest || !strings.Contains(r.Error, a.want) {
			t.Errorf("%s\n  got %d %q, want 400 mentioning %q", a.sql, r.status, r.Error, a.want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "out.csv")); err == nil {
		t.Error("COPY wrote a file")
	}
	// The project's own data is all a query sees.
	if n := e.count("SELECT count(*) FROM records"); n != 1 {
		t.Errorf("records holds %d rows for default, want only its own 1", n)
	}
	if n := e.count("SELECT count(*) FROM records WHERE span_name = 'secret of other'"); n != 0 {
		t.Errorf("default sees %d rows of another project", n)
	}
	// CTEs used as intended still work, recursive ones too, and a CTE
	// named records reads the real table in its body.
	for q, want := range map[string]int64{
		"WITH a AS (SELECT * FROM records), b AS (SELECT * FROM a) SELECT count(*) FROM b":                        1,
		"WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT count(*) FROM t":      5,
		"WITH records AS (SELECT * FROM records WHERE level >= 0) SELECT count(*) FROM records":                   1,
		"SELECT (WITH x AS (SELECT count(*) AS c FROM records) SELECT c FROM x) + (SELECT count(*) FROM records)": 2,
	} {
		if n := e.count(q); n != want {
			t.Errorf("%s: %d, want %d", q, n, want)
		}
	}
	// Errors point at the problem.
	r := e.do("POST", map[string]any{"sql": "SELECT *\nFROM records, read_csv('/etc/passwd')"}, "")
	if !strings.Contains(r.Error, "LINE 2: FROM records, read_csv('/etc/passwd')") || !strings.Contains(r.Error, "^") {
		t.Errorf("sandbox error does not point at the table function: %q", r.Error)
	}
}

func TestSandbox_ResourceExhaustionIsStoppedWithoutHurtingOthers(t *testing.T) {
	e := newEnv(t, envOptions{queryTimeout: 2 * time.Second})
	e.send(span{name: "ok"})
	e.flushed()
	heavy := []string{
		"SELECT count(*) FROM range(1000000000) a, range(1000000000) b",
		"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
		"SELECT length(string_agg(repeat('x', 100000), '')) FROM range(200000)",
	}
	var wg sync.WaitGroup
	for _, h := range heavy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r := e.do("POST", map[string]any{"sql": h}, "")
			// Stopped by the time limit or the memory limit, whichever
			// comes first with the others running.
			if r.status != http.StatusBadRequest ||
				!(strings.Contains(r.Error, "time limit") || strings.Contains(r.Error, "Out of Memory")) {
				t.Errorf("%s: %d %q, want 400 for the time or memory limit", h, r.status, r.Error)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("%s ran %v", h, took)
			}
		}()
	}
	// Meanwhile ordinary queries keep being answered.
	for range 5 {
		if n := e.count("SELECT count(*) FROM records"); n != 1 {
			t.Errorf("count while heavy queries run: %d", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	if n := e.count("SELECT count(*) FROM records"); n != 1 {
		t.Errorf("count after: %d", n)
	}
}

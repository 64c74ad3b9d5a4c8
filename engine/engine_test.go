package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// fill builds a batch of n rows of table t where every column gets a value
// derived from the row number and column, and every nullable column is null
// on some rows, so that a round trip checks every type and null handling.
func fill(t *schema.Table, n, seed int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, t.Schema)
	defer b.Release()
	for c, f := range t.Schema.Fields() {
		for i := range n {
			row := seed*1000 + i
			if f.Nullable && (row+c)%7 == 0 {
				b.Field(c).AppendNull()
				continue
			}
			switch fb := b.Field(c).(type) {
			case *array.StringBuilder:
				switch f.Name {
				case "project_id":
					fb.Append("default")
				case "service_name":
					// Unsorted input: the writer must sort it.
					fb.Append(fmt.Sprintf("svc-%d", (row*7)%5))
				default:
					fb.Append(fmt.Sprintf("%s-%d-é'\"", f.Name, row))
				}
			case *array.ExtensionBuilder:
				fb.StorageBuilder().(*array.StringBuilder).Append(fmt.Sprintf(`{"row":%d,"col":%q,"nested":{"list":[1,2.5,"x",null,true]}}`, row, f.Name))
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(t0.Add(time.Duration((row*7919)%3600)*time.Second + time.Duration(row)*time.Microsecond).UnixMicro()))
			case *array.Float64Builder:
				fb.Append(float64(row) / 8)
			case *array.Int32Builder:
				fb.Append(int32(row - 3))
			case *array.Int64Builder:
				fb.Append(int64(row) << 33)
			case *array.BooleanBuilder:
				fb.Append(row%2 == 0)
			case *array.ListBuilder:
				fb.Append(true)
				switch vb := fb.ValueBuilder().(type) {
				case *array.StringBuilder:
					for k := range row % 3 {
						vb.Append(fmt.Sprintf("tag%d", k))
					}
				case *array.Int64Builder:
					for k := range row % 4 {
						vb.Append(int64(k * row))
					}
				case *array.Float64Builder:
					for k := range row % 4 {
						vb.Append(float64(k) * 0.5)
					}
				}
			default:
				panic(fmt.Sprintf("no test value for %s (%T)", f.Name, fb))
			}
		}
	}
	return b.NewRecordBatch()
}

func writeFile(t *testing.T, dir, name string, tbl *schema.Table, batches []arrow.RecordBatch, opts engine.ParquetOptions) (string, engine.FileInfo) {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := engine.WriteParquet(f, tbl, batches, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, info
}

func openDB(t *testing.T, dir string, opts engine.Options) *engine.DB {
	t.Helper()
	opts.AllowedDirs = []string{dir}
	opts.TempDir = filepath.Join(t.TempDir(), "spill")
	db, err := engine.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// collect reads a result into one string per row, each value rendered by
// Arrow's ValueStr.
func collect(t *testing.T, rows *engine.Rows) (cols []string, out [][]string) {
	t.Helper()
	defer rows.Release()
	for _, f := range rows.Schema().Fields() {
		cols = append(cols, f.Name)
	}
	for rows.Next() {
		rec := rows.RecordBatch()
		for i := range int(rec.NumRows()) {
			row := make([]string, rec.NumCols())
			for c := range row {
				row[c] = valueStr(rec.Column(c), i)
			}
			out = append(out, row)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, out
}

func valueStr(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	if ts, ok := a.(*array.Timestamp); ok {
		return ts.Value(i).ToTime(arrow.Microsecond).UTC().Format(time.RFC3339Nano)
	}
	// A copy: DuckDB's result buffers are freed with the batch.
	return strings.Clone(a.ValueStr(i))
}

func query(t *testing.T, db *engine.DB, q engine.Query) [][]string {
	t.Helper()
	rows, err := db.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q.SQL, err)
	}
	_, out := collect(t, rows)
	return out
}

func TestWriteParquet_RoundTripThroughDuckDB(t *testing.T) {
	for _, tbl := range schema.Tables() {
		t.Run(tbl.Name, func(t *testing.T) {
			dir := t.TempDir()
			batches := []arrow.RecordBatch{fill(tbl, 300, 0), fill(tbl, 200, 1)}
			defer func() {
				for _, b := range batches {
					b.Release()
				}
			}()
			path, info := writeFile(t, dir, "f.parquet", tbl, batches, engine.ParquetOptions{RowGroupRows: 128})
			if info.Rows != 500 {
				t.Fatalf("rows = %d", info.Rows)
			}
			db := openDB(t, dir, engine.Options{})

			// Expected rows straight from the Arrow input, keyed by a
			// column unique per row.
			want := map[string][]string{}
			var names []string
			for _, f := range tbl.Schema.Fields() {
				names = append(names, f.Name)
			}
			keyCol := tbl.Index(tbl.TimeColumn)
			for _, b := range batches {
				for i := range int(b.NumRows()) {
					row := make([]string, b.NumCols())
					for c := range row {
						row[c] = valueStr(b.Column(c), i)
					}
					want[row[keyCol]] = row
				}
			}
			rows, err := db.Query(context.Background(), engine.Query{
				SQL:   "SELECT * FROM " + tbl.Name,
				Files: map[string][]engine.File{tbl.Name: {{Path: path}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			cols, got := collect(t, rows)
			if strings.Join(cols, ",") != strings.Join(names, ",") {
				t.Fatalf("columns:\n got %v\nwant %v", cols, names)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d rows, want %d", len(got), len(want))
			}
			for _, row := range got {
				w, ok := want[row[keyCol]]
				if !ok {
					t.Fatalf("unexpected row %v", row)
				}
				for c := range row {
					if row[c] != w[c] {
						t.Fatalf("row %s column %s: got %q, want %q", row[keyCol], names[c], row[c], w[c])
					}
				}
			}

			// Sorted by the table's sort columns.
			order := query(t, db, engine.Query{
				SQL:   "SELECT " + strings.Join(tbl.SortColumns, ", ") + " FROM " + tbl.Name,
				Files: map[string][]engine.File{tbl.Name: {{Path: path}}},
			})
			for i := 1; i < len(order); i++ {
				if strings.Join(order[i-1], "\x00") > strings.Join(order[i], "\x00") && order[i-1][0] != "NULL" {
					t.Fatalf("rows %d and %d out of order: %v then %v", i-1, i, order[i-1], order[i])
				}
			}

			// JSON columns are JSON to DuckDB.
			js := query(t, db, engine.Query{
				SQL:   "SELECT attributes->>'col', typeof(attributes) FROM " + tbl.Name + " WHERE attributes IS NOT NULL LIMIT 1",
				Files: map[string][]engine.File{tbl.Name: {{Path: path}}},
			})
			if js[0][0] != "attributes" || js[0][1] != "JSON" {
				t.Fatalf("json access: %v", js)
			}
		})
	}
}

func TestWriteParquet_FileProperties(t *testing.T) {
	dir := t.TempDir()
	tbl, _ := schema.Lookup(schema.Records)
	b := fill(tbl, 1000, 0)
	defer b.Release()
	path, info := writeFile(t, dir, "f.parquet", tbl, []arrow.RecordBatch{b}, engine.ParquetOptions{RowGroupRows: 256})
	if !info.MinTime.Equal(t0) || info.MaxTime.Before(t0.Add(3500*time.Second)) {
		t.Fatalf("time range %v – %v", info.MinTime, info.MaxTime)
	}
	db := openDB(t, dir, engine.Options{})
	files := map[string][]engine.File{"records": {{Path: path}}}
	// Four row groups of ≤256 rows, zstd, with statistics.
	meta := query(t, db, engine.Query{Files: files, SQL: fmt.Sprintf(`
		SELECT count(DISTINCT row_group_id), max(row_group_num_rows), min(compression),
		       bool_and(stats_min_value IS NOT NULL OR stats_null_count = row_group_num_rows)
		FROM parquet_metadata('%s')`, path)})
	if got := strings.Join(meta[0], ","); got != "4,256,ZSTD,true" {
		t.Fatalf("row groups, max rows, codec, stats = %s", got)
	}
	// A bloom filter on trace_id: a present id may match, an absent one is excluded.
	var present string
	for i := range b.NumRows() {
		if col := b.Column(tbl.Index("trace_id")).(*array.String); col.IsValid(int(i)) {
			present = col.Value(int(i))
			break
		}
	}
	bloom := query(t, db, engine.Query{Files: files, SQL: fmt.Sprintf(`
		SELECT bool_or(bloom_filter_excludes = false), bool_and(bloom_filter_excludes)
		FROM parquet_bloom_probe('%s', 'trace_id', '%s')
		UNION ALL
		SELECT bool_or(bloom_filter_excludes = false), bool_and(bloom_filter_excludes)
		FROM parquet_bloom_probe('%s', 'trace_id', 'ffffffffffffffffffffffffffffffff')`,
		path, strings.ReplaceAll(present, "'", "''"), path)})
	if bloom[0][0] != "true" || bloom[1][1] != "true" {
		t.Fatalf("bloom probe present/absent: %v", bloom)
	}
}

func TestDB_EmptyViewsHaveTheTableColumns(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{})
	for _, tbl := range schema.Tables() {
		rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT * FROM " + tbl.Name, Files: map[string][]engine.File{tbl.Name: nil}})
		if err != nil {
			t.Fatal(err)
		}
		cols, out := collect(t, rows)
		if len(out) != 0 || len(cols) != tbl.Schema.NumFields() {
			t.Fatalf("%s: %d columns, %d rows", tbl.Name, len(cols), len(out))
		}
	}
	got := query(t, db, engine.Query{SQL: "SELECT count(*), typeof(any_value(attributes)), typeof(any_value(start_timestamp)) FROM records",
		Files: map[string][]engine.File{schema.Records: {}}})
	if strings.Join(got[0], ",") != "0,JSON,TIMESTAMP WITH TIME ZONE" {
		t.Fatalf("empty records: %v", got)
	}
}

func TestDB_LockedDown(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.csv"), []byte("a\n1\n"), 0o644)
	db := openDB(t, dir, engine.Options{MemoryLimit: "1GB", Threads: 2})
	for _, sql := range []string{
		"SELECT * FROM read_csv('" + filepath.Join(outside, "secret.csv") + "')",
		"SELECT * FROM read_text('/etc/passwd')",
		"SET threads = 1",
		"SET memory_limit = '100GB'",
		"SET enable_external_access = true",
		"RESET lock_configuration",
		"INSTALL httpfs",
		"LOAD httpfs",
		"COPY (SELECT 1) TO '" + filepath.Join(outside, "out.csv") + "'",
	} {
		rows, err := db.Query(context.Background(), engine.Query{SQL: sql})
		if err == nil {
			rows.Release()
			t.Errorf("%s: succeeded, want an error", sql)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "out.csv")); err == nil {
		t.Error("COPY wrote outside the allowed directory")
	}
	got := query(t, db, engine.Query{SQL: "SELECT current_setting('threads'), current_setting('memory_limit'), current_setting('TimeZone')"})
	if strings.Join(got[0], ",") != "2,953.6 MiB,UTC" {
		t.Fatalf("settings after lock-down: %v", got)
	}
}

func TestDB_QueryTimeout(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{QueryTimeout: 200 * time.Millisecond})
	start := time.Now()
	rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT count(*) FROM range(1000000) a, range(1000000) b"})
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Release()
	}
	if !errors.Is(err, engine.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("query ran %v after its 200ms timeout", elapsed)
	}
	// The instance keeps serving.
	if got := query(t, db, engine.Query{SQL: "SELECT 42"}); got[0][0] != "42" {
		t.Fatalf("after timeout: %v", got)
	}
}

func TestDB_ConcurrentQueriesSeeTheirOwnFiles(t *testing.T) {
	dir := t.TempDir()
	tbl, _ := schema.Lookup(schema.Records)
	var paths []string
	for i := range 4 {
		b := fill(tbl, 10*(i+1), i)
		p, _ := writeFile(t, dir, fmt.Sprintf("f%d.parquet", i), tbl, []arrow.RecordBatch{b}, engine.ParquetOptions{})
		b.Release()
		paths = append(paths, p)
	}
	db := openDB(t, dir, engine.Options{})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				f := (g + i) % 4
				rows, err := db.Query(context.Background(), engine.Query{
					SQL:   "SELECT count(*) FROM records",
					Files: map[string][]engine.File{"records": {{Path: paths[f]}}},
				})
				if err != nil {
					t.Error(err)
					return
				}
				rows.Next()
				n := rows.RecordBatch().Column(0).ValueStr(0)
				rows.Release()
				if want := fmt.Sprint(10 * (f + 1)); n != want {
					t.Errorf("file %d: count %s, want %s", f, n, want)
				}
			}
		}()
	}
	wg.Wait()
}

func TestWriteParquet_TextZstdLevelAppliesToPlainColumnsOnly(t *testing.T) {
	dir := t.TempDir()
	tbl, _ := schema.Lookup(schema.Records)
	b := fill(tbl, 20000, 0)
	defer b.Release()
	fast, _ := writeFile(t, dir, "fast.parquet", tbl, []arrow.RecordBatch{b}, engine.ParquetOptions{})
	hard, _ := writeFile(t, dir, "hard.parquet", tbl, []arrow.RecordBatch{b}, engine.ParquetOptions{TextZstdLevel: 6})
	db := openDB(t, dir, engine.Options{})
	sizes := func(path string) map[string]int64 {
		out := map[string]int64{}
		for _, r := range query(t, db, engine.Query{SQL: fmt.Sprintf(`
			SELECT path_in_schema, sum(total_compressed_size) FROM parquet_metadata('%s') GROUP BY 1`, path)}) {
			var n int64
			fmt.Sscan(r[1], &n)
			out[r[0]] = n
		}
		return out
	}
	f, h := sizes(fast), sizes(hard)
	if h["attributes"] >= f["attributes"] {
		t.Errorf("attributes: %d bytes at level 6, %d at level 1", h["attributes"], f["attributes"])
	}
	if h["service_name"] != f["service_name"] || h["duration"] != f["duration"] {
		t.Errorf("dictionary columns changed: service_name %d/%d, duration %d/%d",
			h["service_name"], f["service_name"], h["duration"], f["duration"])
	}
	rows := query(t, db, engine.Query{SQL: fmt.Sprintf(`
		SELECT count(*) FROM (SELECT * FROM read_parquet('%s') EXCEPT ALL SELECT * FROM read_parquet('%s'))`, hard, fast)})
	if rows[0][0] != "0" {
		t.Errorf("%s rows differ between the two files", rows[0][0])
	}
}

// A table without trace ids (metrics) is filtered by time alone: asking
// for its columns or trace ids must not look for a trace_id column (it
// panicked, and took a Postgres-wire session's server down with it).
func TestNeed_AppliesToATableWithoutTraceIDs(t *testing.T) {
	tb, _ := schema.Lookup(schema.Metrics)
	b := array.NewRecordBuilder(memory.DefaultAllocator, tb.Schema)
	defer b.Release()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i, f := range tb.Schema.Fields() {
		for r := range 3 {
			fb := b.Field(i)
			if f.Name == tb.TimeColumn {
				fb.(*array.TimestampBuilder).Append(arrow.Timestamp(at.Add(time.Duration(r) * time.Minute).UnixMicro()))
			} else if f.Nullable {
				fb.AppendNull()
			} else {
				fb.AppendEmptyValue()
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	need := engine.Need{Min: at.Add(time.Minute), TraceIDs: []string{"0123"}, Columns: []string{"metric_name"}}
	got, err := need.Apply(tb, []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, g := range got {
			g.Release()
		}
	}()
	rows := int64(0)
	for _, g := range got {
		rows += g.NumRows()
	}
	if rows != 2 {
		t.Fatalf("%d rows kept, want the 2 from %s on", rows, need.Min)
	}
}

// Out of memory is the user's error, and its advice is not DuckDB's
// settings, which no query may change here.
func TestDB_OutOfMemoryAdvice(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{MemoryLimit: "64MB", MaxTempSize: "1MB"})
	rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT list(i::VARCHAR || repeat('x', 100)) FROM range(10000000) t(i)"})
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Release()
	}
	var qe *engine.QueryError
	if !errors.As(err, &qe) || !strings.Contains(qe.Msg, "Out of Memory") || strings.Contains(qe.Msg, "SET ") || !strings.Contains(qe.Msg, "narrow its time range") {
		t.Fatalf("err = %v", err)
	}
}

// A result over MaxRows ends in an error instead of being built whole
// (DuckDB builds results outside its memory limit); results at the bound,
// names and order are as the query wrote them.
func TestDB_MaxRows(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{MaxRows: 1000})
	count := func(sql string) (int64, []string, error) {
		rows, err := db.Query(context.Background(), engine.Query{SQL: sql})
		if err != nil {
			return 0, nil, err
		}
		defer rows.Release()
		var names []string
		for _, f := range rows.Schema().Fields() {
			names = append(names, f.Name)
		}
		n := int64(0)
		for rows.Next() {
			n += rows.RecordBatch().NumRows()
		}
		return n, names, rows.Err()
	}
	if n, _, err := count("SELECT * FROM range(1000)"); err != nil || n != 1000 {
		t.Fatalf("at the bound: %d rows, %v", n, err)
	}
	var qe *engine.QueryError
	if _, _, err := count("SELECT * FROM range(20000000000)"); !errors.As(err, &qe) || !strings.Contains(qe.Msg, "more than 1000 rows") {
		t.Fatalf("over the bound: %v", err)
	}
	if !errors.Is(qe, engine.ErrTooManyRows) {
		t.Errorf("over the bound: %v is not ErrTooManyRows", qe)
	}
	// A Limit within the bound ends the result there, cut inside
	// DuckDB's first batch (QA: the HTTP API's limit counted whole
	// batches against the bound and failed).
	for _, limit := range []int64{10, 1000, 2500} {
		rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT * FROM range(5000)", Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		for rows.Next() {
			n += rows.RecordBatch().NumRows()
		}
		err = rows.Err()
		rows.Release()
		if limit <= 1000 && (err != nil || n != limit) || limit > 1000 && !errors.Is(err, engine.ErrTooManyRows) {
			t.Errorf("Limit %d under MaxRows 1000: %d rows, %v", limit, n, err)
		}
	}
	if n, names, err := count("SELECT 1 AS a, 2 AS a, 3 AS b; -- two a's\n"); err != nil || n != 1 || strings.Join(names, ",") != "a,a,b" {
		t.Fatalf("names kept: %v %d %v", names, n, err)
	}
	rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT i FROM range(10) t(i) ORDER BY i DESC -- last"})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Release()
	rows.Next()
	if first := rows.RecordBatch().Column(0).ValueStr(0); first != "9" {
		t.Fatalf("order lost: first row %s", first)
	}
}

// Results are computed as they are read: the first batch of a result of a
// trillion rows is there at once (a result built whole first would run
// into the time limit), and releasing the reader stops DuckDB.
func TestDB_ResultsStream(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{QueryTimeout: time.Minute})
	rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT i FROM range(1000000000000) t(i)"})
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("no first batch: %v", rows.Err())
	}
	b := rows.RecordBatch()
	if b.NumRows() == 0 || b.Column(0).ValueStr(0) != "0" {
		t.Fatalf("first batch: %d rows, first %s", b.NumRows(), b.Column(0).ValueStr(0))
	}
	rows.Release()
	// The connection serves the next query.
	if got := query(t, db, engine.Query{SQL: "SELECT 42"}); got[0][0] != "42" {
		t.Fatalf("after a released stream: %v", got)
	}
}

// A failure met while a result streams (here a row far into it) ends the
// reading with the user's error, after the batches before it.
func TestDB_ErrorMidStream(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{})
	rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT CASE WHEN i < 500000 THEN i ELSE error('row ' || i || ' is bad') END FROM range(1000000) t(i)"})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Release()
	n := int64(0)
	for rows.Next() {
		n += rows.RecordBatch().NumRows()
	}
	// Now and then DuckDB reports the interruption of its other threads
	// instead of the failure: an error still, never a clean end.
	var qe *engine.QueryError
	if err := rows.Err(); !errors.As(err, &qe) || !(strings.Contains(qe.Msg, "row 500000 is bad") || strings.Contains(qe.Msg, "one of DuckDB's threads")) {
		t.Fatalf("after %d rows: err = %v", n, err)
	}
	if n == 0 || n >= 500000+2048 {
		t.Fatalf("%d rows read before the error", n)
	}
}

// Cancelling the context of a query being read stops it; the connection
// stays usable and no interrupt leaks into its next query.
func TestDB_CancelWhileReading(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{QueryTimeout: time.Minute})
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		rows, err := db.Query(ctx, engine.Query{SQL: "SELECT md5(i::VARCHAR) FROM range(1000000000000) t(i)"})
		if err != nil {
			t.Fatal(err)
		}
		if !rows.Next() {
			t.Fatalf("no first batch: %v", rows.Err())
		}
		cancel()
		for rows.Next() {
		}
		if err := rows.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("err after cancel = %v", err)
		}
		rows.Release()
		if got := query(t, db, engine.Query{SQL: "SELECT count(*) FROM range(3000000)"}); got[0][0] != "3000000" {
			t.Fatalf("after a cancelled query: %v", got)
		}
	}
}

// Queries with fresh rows running at once each read their own rows: the
// Arrow stream each registers while copying them must not be another's.
func TestDB_ConcurrentFreshRows(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{})
	rec, _ := schema.Lookup(schema.Records)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := fill(rec, 100+g, g)
			defer b.Release()
			for range 25 {
				rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT count(*) FROM records",
					Files: map[string][]engine.File{schema.Records: nil}, Fresh: map[string][]arrow.RecordBatch{schema.Records: {b}}})
				if err != nil {
					errs <- err
					return
				}
				n := ""
				if rows.Next() {
					n = rows.RecordBatch().Column(0).ValueStr(0)
				}
				err = rows.Err()
				rows.Release()
				if err != nil || n != fmt.Sprint(100+g) {
					errs <- fmt.Errorf("query %d: count %s, want %d (%v)", g, n, 100+g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Queries with fresh rows that end early (their context ends while the
// rows are copied) neither crash the process (DuckDB reading a stream
// already freed) nor leave the stream's view behind.
func TestDB_FreshRowsOfQueriesEndingEarly(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{})
	rec, _ := schema.Lookup(schema.Records)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := fill(rec, 20000, g)
			defer b.Release()
			for i := range 150 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration((i*7+g)%30)*time.Millisecond)
				rows, err := db.Query(ctx, engine.Query{SQL: "SELECT count(*) FROM records",
					Files: map[string][]engine.File{schema.Records: nil}, Fresh: map[string][]arrow.RecordBatch{schema.Records: {b, b, b}}})
				if err == nil {
					for rows.Next() {
					}
					rows.Release()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	got := query(t, db, engine.Query{SQL: "SELECT count(*) FROM duckdb_views() WHERE view_name LIKE '__strata_stream%'", Raw: true})
	if got[0][0] != "0" {
		t.Fatalf("%s stream views left behind", got[0][0])
	}
}

// BlankLiterals blanks what is inside string literals and comments, and
// only that: the semicolons between statements stay, whatever quotes,
// dollars or comment marks come before them in identifiers.
func TestBlankLiterals_KeepsWhatIsNotALiteral(t *testing.T) {
	for in, semicolons := range map[string]int{
		`SELECT 'a;b', 1; SELECT 2`:                  1,
		`SELECT 1 AS "x'" -- ' "; COMMIT` + "\n":     0,
		`SELECT 1 AS "a--b"; SELECT 2`:               1,
		`SELECT 1 AS typE'\'; SELECT 2 --'`:          1,
		`SELECT E'\';' ; SELECT 2`:                   1,
		`SELECT 1 AS x$ä$; SELECT 2 AS y$ä$`:         1,
		`SELECT $a$;$a$; /* a /* b */ ; */ SELECT 2`: 1,
		"SELECT 1 -- x\r; SELECT 2":                  1,
	} {
		got := engine.BlankLiterals(in)
		if n := strings.Count(got, ";"); n != semicolons || len(got) != len(in) {
			t.Errorf("BlankLiterals(%q) = %q: %d semicolons left, want %d", in, got, n, semicolons)
		}
	}
}

// DuckDB's memory limit is one pool: a query that fails at its start for
// want of memory another query holds runs again once that memory is given
// back, instead of failing.
func TestQuery_OutOfMemoryAtStartWaitsForAnotherQuerysMemory(t *testing.T) {
	db := openDB(t, t.TempDir(), engine.Options{MemoryLimit: "200MB", Threads: 1})
	ctx := context.Background()
	// A result of one 60 MB row, not yet read: its memory stays held.
	holder, err := db.Query(ctx, engine.Query{SQL: "SELECT list(repeat('x', 1000)) AS l FROM range(60000)", Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		holder.Release()
		close(released)
	}()
	rows, err := db.Query(ctx, engine.Query{SQL: "SELECT length(list(repeat('y', 1000))) AS n FROM range(60000)", Raw: true})
	if err != nil {
		t.Fatalf("a query that needed the memory another held, once it was given back: %v", err)
	}
	_, got := collect(t, rows)
	if len(got) != 1 || got[0][0] != "60000" {
		t.Errorf("result %v", got)
	}
	<-released
}

package ingest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/internal/testenv"
)

func TestSnapshot_ReadsTheWALInPlaceAndOutlivesTheFlush(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat := testenv.SQLiteCatalog(t, dir, catalog.Options{})
	bucket := testenv.Bucket(t, testenv.FileURL(dir))
	// Small segments, so the rows span sealed segments and the active one.
	// The projects are not in the catalog yet, so no flush can register
	// its files (it retries) until the test creates them.
	in, err := Open(cat, bucket, Options{ScratchDir: filepath.Join(dir, "wal"), FlushInterval: time.Hour, FlushBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	var want []arrow.RecordBatch // project a, hour 1
	for i := range 40 {
		start := hour.Add(time.Duration(i%2) * time.Hour) // two hours
		b := spanBatch(t, 50+i, start)
		project := "a"
		if i%5 == 4 {
			project = "b"
		}
		if err := in.Append(ctx, project, schema.Records, b); err != nil {
			t.Fatal(err)
		}
		if project == "a" && i%2 == 1 {
			want = append(want, b)
		} else {
			b.Release()
		}
	}
	if st := in.Stats(); st.SealedSegments < 2 {
		t.Fatalf("want rows in several segments, got %+v", st)
	}

	got, pending, done, err := in.Snapshot(ctx, "a", schema.Records, engine.Need{Min: hour.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) == 0 {
		t.Fatal("no pending file keys")
	}
	same := func(when string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d batches, want %d", when, len(got), len(want))
		}
		for i := range want {
			if !array.RecordEqual(want[i], got[i]) {
				t.Fatalf("%s: batch %d differs", when, i)
			}
		}
	}
	same("snapshot")

	// Flush and delete every segment while the snapshot is held: its rows
	// stay readable until it is released.
	for _, id := range []string{"a", "b"} {
		if err := cat.CreateProject(ctx, catalog.Project{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := in.Stats(); st.SealedSegments != 0 || st.UnflushedRows != 0 {
		t.Fatalf("after close: %+v", st)
	}
	if files, _ := cat.ListFiles(ctx, catalog.FileFilter{Project: "a", Table: schema.Records}); len(files) == 0 {
		t.Fatal("nothing flushed")
	}
	same("after the flush")
	release(want)
	done()
}

func TestSnapshot_ReadsUnalignedFramesOfOlderSegments(t *testing.T) {
	b := spanBatch(t, 30, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	defer b.Release()
	frame, err := encodeFrame(bufKey{project: "default", table: schema.Records}, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame)%8 != 0 {
		t.Fatalf("frame of %d bytes is not padded to 8", len(frame))
	}
	for shift := range 8 { // the payload at every alignment
		buf := make([]byte, shift+len(frame))
		payload := buf[shift : shift+len(frame)-frameHeader]
		copy(payload, frame[frameHeader:])
		key, msg, err := messageInPlace(payload)
		if err != nil || key.project != "default" {
			t.Fatalf("shift %d: %v %+v", shift, err, key)
		}
		got, err := readInPlace(schema.Records, schema.Version, []*ipc.Message{msg})
		if err != nil {
			t.Fatal(err)
		}
		if !array.RecordEqual(b, got[0]) {
			t.Fatalf("shift %d: rows differ", shift)
		}
		release(got)
	}
}

// A query node keeps asking an ingest node that lost its heartbeat (cut
// off from the catalog, it goes on acknowledging rows it cannot flush)
// through a failed answer or two, and stops once it has failed for
// keptFor.
// holding25 returns an ingester that holds 25 unflushed spans of a
// minute ago.
func holding25(t *testing.T) *Ingester {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat := testenv.SQLiteCatalog(t, dir, catalog.Options{})
	bucket := testenv.Bucket(t, testenv.FileURL(dir))
	in, err := Open(cat, bucket, Options{ScratchDir: filepath.Join(dir, "wal"), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(ctx) })
	b := spanBatch(t, 25, time.Now().UTC().Add(-time.Minute))
	defer b.Release()
	if err := in.Append(ctx, catalog.DefaultProject, schema.Records, b); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestPeers_NodeWithoutAHeartbeatIsAskedWhileItAnswers(t *testing.T) {
	ctx := context.Background()
	in := holding25(t)
	secret := []byte("secret")
	var hiccup atomic.Bool
	handler := UnflushedHandler(in, secret)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hiccup.Swap(false) {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	addr := strings.TrimPrefix(srv.URL, "http://")
	p := NewPeers(nil, 2*time.Second, secret)
	rows := func() (int64, int) {
		batches, _, done, err := p.Snapshot(ctx, catalog.DefaultProject, schema.Records, engine.Need{})
		defer done()
		n := int64(0)
		for _, b := range batches {
			n += b.NumRows()
		}
		var sm *engine.SourcesMissing
		if errors.As(err, &sm) {
			return n, sm.N
		}
		return n, 0
	}
	p.setNodes([]string{addr}, nil)
	if n, _ := rows(); n != 25 {
		t.Fatalf("listed: %d rows, want 25", n)
	}
	p.setNodes(nil, []string{addr}) // its heartbeat aged out
	if n, _ := rows(); n != 25 {
		t.Fatalf("no longer listed, still answering: %d rows, want 25", n)
	}
	hiccup.Store(true)
	if n, missing := rows(); n != 0 || missing != 1 {
		t.Fatalf("one failed answer: %d rows, %d nodes missing; want 0 and 1", n, missing)
	}
	if n, _ := rows(); n != 25 {
		t.Fatalf("after one failed answer: %d rows, want 25 (still asked)", n)
	}
	srv.Close()
	defer func(d time.Duration) { keptFor = d }(keptFor)
	keptFor = 0
	rows() // fails: failing since now
	rows() // failed for keptFor: forgotten
	if asked := p.asked(); len(asked) != 0 {
		t.Fatalf("after it failed for keptFor, still asked: %v", asked)
	}
	// A node that left the catalog (it stopped cleanly, all flushed) is
	// not asked again, kept or not.
	p.setNodes([]string{addr}, nil)
	p.setNodes(nil, nil)
	if asked := p.asked(); len(asked) != 0 {
		t.Fatalf("a node that left: still asked %v", asked)
	}
	p.setNodes([]string{addr}, nil)
	p.setNodes(nil, []string{addr})
	p.setNodes(nil, nil)
	if asked := p.asked(); len(asked) != 0 {
		t.Fatalf("a kept node that then left: still asked %v", asked)
	}
}

// During a rolling upgrade a query node asks ingest nodes of two schema
// versions for their unflushed rows: an older node answers without the
// columns its version lacks. Every answer is conformed to the columns the
// query asked for, NULL where a node had none, so the rows of all nodes
// load as one table.
func TestPeers_NodesOfAnOlderSchemaVersionAnswerWithNulls(t *testing.T) {
	ctx := context.Background()
	in := holding25(t)
	now := time.Now().UTC().Add(-time.Minute)
	secret := []byte("secret")
	current := httptest.NewServer(UnflushedHandler(in, secret))
	defer current.Close()

	// The older node: version 1's columns, projected as its Apply did.
	tbl, _ := schema.Lookup(schema.Records)
	v1, _ := tbl.SchemaAt(1)
	old := spanBatch(t, 10, now)
	defer old.Release()
	older := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keep := map[string]bool{}
		for _, c := range strings.Split(r.URL.Query().Get("columns"), ",") {
			keep[c] = true
		}
		keep[tbl.TimeColumn], keep["trace_id"] = true, true
		var fields []arrow.Field
		var cols []arrow.Array
		for i, f := range v1.Fields() {
			if !r.URL.Query().Has("columns") || keep[f.Name] {
				fields, cols = append(fields, f), append(cols, old.Column(i))
			}
		}
		s := arrow.NewSchema(fields, nil)
		rec := array.NewRecordBatch(s, cols, old.NumRows())
		defer rec.Release()
		iw := ipc.NewWriter(w, ipc.WithSchema(s))
		iw.Write(rec)
		iw.Close()
	}))
	defer older.Close()

	p := NewPeers([]string{strings.TrimPrefix(current.URL, "http://"), strings.TrimPrefix(older.URL, "http://")}, 2*time.Second, secret)
	for _, need := range []engine.Need{{}, {Columns: []string{"span_name", "trace_flags", "otel_scope_attributes"}}} {
		batches, _, done, err := p.Snapshot(ctx, catalog.DefaultProject, schema.Records, need)
		if err != nil {
			done()
			t.Fatalf("columns %v: %v", need.Columns, err)
		}
		rdr, err := array.NewRecordReader(batches[0].Schema(), batches) // as the query loads them
		if err != nil {
			done()
			t.Fatalf("columns %v: the answers do not load as one table: %v", need.Columns, err)
		}
		rdr.Release()
		var rows, flags int64
		for _, b := range batches {
			rows += b.NumRows()
			col := b.Column(b.Schema().FieldIndices("trace_flags")[0])
			flags += int64(col.Len() - col.NullN())
		}
		done()
		if rows != 35 || flags != 25 {
			t.Fatalf("columns %v: %d rows, %d with trace flags; want 35 and 25 (the older node's NULL)", need.Columns, rows, flags)
		}
	}
}

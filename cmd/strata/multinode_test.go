package main_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/internal/otlptest"
)

// countOf runs a count query on n.
func countOf(t *testing.T, n *node, sql string) int64 {
	t.Helper()
	rows := n.query(t, sql)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: %v", sql, rows)
	}
	return int64(rows[0][0].(float64))
}

// A query node apart from ingest sees the rows its ingest nodes have
// acknowledged but not flushed, each exactly once while they flush, and
// keeps answering when an ingest node dies.
func TestMultiNode_QueryNodeSeesUnflushedRowsOfIngestNodes(t *testing.T) {
	dir := t.TempDir()
	ingestNode := func(name string) *node {
		return startRole(t, "ingest", dir, "--scratch-dir", filepath.Join(dir, name), "--flush-interval", "1h")
	}
	a, b := ingestNode("wal-a"), ingestNode("wal-b")
	for _, bad := range []string{"", "?project=default", "?project=default&table=spans", "?project=default&table=records&min=yesterday"} {
		resp, err := http.Get("http://" + a.admin + "/v1/unflushed" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /v1/unflushed%s: %d, want 400", bad, resp.StatusCode)
		}
	}
	defer a.kill()
	q := startRole(t, "query", dir) // finds a and b through their catalog heartbeats
	defer q.kill()

	ctx := context.Background()
	sa, sb := otlptest.NewSender("svc-a"), otlptest.NewSender("svc-b")
	for _, x := range []struct {
		s *otlptest.Sender
		n *node
	}{{sa, a}, {sb, b}} {
		if code, err := x.s.Send(ctx, http.DefaultClient, x.n.otlpHTTP, 300); err != nil || code != 200 {
			t.Fatalf("send: %d %v", code, err)
		}
	}
	all := "SELECT count(*) FROM records"
	if got := countOf(t, q, all); got != 600 {
		t.Fatalf("before any flush: %d rows, want 600", got)
	}
	if got := countOf(t, q, "SELECT count(*) FROM records WHERE service_name = 'svc-b'"); got != 300 {
		t.Fatalf("rows of node b: %d, want 300", got)
	}
	// Listed under another name too (a DNS name beside the address it
	// announces), a node's rows are read once.
	_, port, _ := net.SplitHostPort(a.admin)
	q2 := startRole(t, "query", dir, "--ingest-nodes", "localhost:"+port, "--cache-dir", filepath.Join(dir, "cache-q2"))
	if got := countOf(t, q2, all); got != 600 {
		t.Fatalf("with node a also listed as localhost:%s: %d rows, want 600", port, got)
	}
	q2.kill()
	// A trace lookup (its ids pushed down to the ingest nodes) finds what a
	// scan finds.
	trace := q.query(t, "SELECT trace_id FROM records WHERE service_name = 'svc-b' LIMIT 1")[0][0].(string)
	byID := countOf(t, q, fmt.Sprintf("SELECT count(*) FROM records WHERE trace_id = '%s'", trace))
	byScan := countOf(t, q, fmt.Sprintf("SELECT count(*) FROM records WHERE trace_id || '' = '%s'", trace))
	if byID == 0 || byID != byScan {
		t.Fatalf("trace %s: %d rows by id, %d by scan", trace, byID, byScan)
	}

	// a flushes as it stops: its rows move to files, still counted once.
	a.cmd.Process.Signal(syscall.SIGTERM)
	if err := a.wait(); err != nil {
		t.Fatalf("ingest a: %v\n%s", err, a.stderr.String())
	}
	if got := countOf(t, q, all); got != 600 {
		t.Fatalf("after a flushed: %d rows, want 600", got)
	}
	// Stopped cleanly with everything flushed, a left the catalog: within
	// a watch interval (5 s) the query node stops asking it, and stops
	// saying a node did not answer (it did so for 90 s: until the
	// heartbeat aged out, then a minute of failed answers).
	missing := func() int { return q.answer(t, all).Stats.IngestNodesMissing }
	for deadline := time.Now().Add(15 * time.Second); missing() != 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("15 s after a stopped cleanly, queries still miss an ingest node")
		}
	}

	// b dies with its rows in the WAL: queries go on without them.
	b.kill()
	if got := countOf(t, q, all); got != 300 {
		t.Fatalf("with b down: %d rows, want a's 300", got)
	}
	if f := q.metric(t, "strata_query_ingest_failures_total"); f < 1 {
		t.Fatalf("failures to reach b not counted: %v", f)
	}
	// b comes back, replays and flushes its WAL: all rows, once.
	b2 := startRole(t, "ingest", dir, "--scratch-dir", filepath.Join(dir, "wal-b"), "--flush-interval", "1h")
	defer b2.kill()
	deadline := time.Now().Add(30 * time.Second)
	for countOf(t, q, all) != 600 {
		if time.Now().After(deadline) {
			t.Fatalf("after b restarted: %d rows, want 600", countOf(t, q, all))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A query node added beside strata serve sees the rows serve has not
// flushed yet.
func TestMultiNode_QueryNodeBesideServe(t *testing.T) {
	dir := t.TempDir()
	s := startNode(t, dir, "--flush-interval", "1h", "--no-compactor")
	// Its own cache directory: two caches on one would evict each other's
	// files (strata refuses that).
	q := startRole(t, "query", dir, "--cache-dir", filepath.Join(dir, "query-cache"))
	sender := otlptest.NewSender("svc")
	if code, err := sender.Send(context.Background(), http.DefaultClient, s.otlpHTTP, 200); err != nil || code != 200 {
		t.Fatalf("send: %d %v", code, err)
	}
	for _, n := range []*node{s, q} {
		if got := countOf(t, n, "SELECT count(*) FROM records"); got != 200 {
			t.Errorf("%s node: %d rows, want the 200 not yet flushed", n.cmd.Args[1], got)
		}
	}
	// Only nodes of the deployment may read those rows: a request without
	// a signed query context is refused.
	resp, err := http.Get("http://" + s.admin + "/v1/unflushed?project=default&table=records")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned GET /v1/unflushed: %d, want 403", resp.StatusCode)
	}
}

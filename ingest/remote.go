package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// When query nodes run apart from ingest, they ask every ingest node for
// the rows it has acknowledged but not flushed: GET UnflushedPath on the
// ingest node's admin address answers Snapshot as an Arrow IPC stream, the
// pending file keys in the schema's metadata. Ingest nodes announce
// themselves in the catalog under Role.

// Role is the catalog role of ingest nodes.
const Role = "ingest"

// UnflushedPath is the ingest node's endpoint for its unflushed rows.
const UnflushedPath = "/v1/unflushed"

const pendingMeta = "strata.pending_keys"

// UnflushedHandler serves in's unflushed rows: GET UnflushedPath?project=P
// &table=records|metrics[&min=µs][&max=µs][&trace_id=…][&exclude=key]
// (times in Unix microseconds, trace_id and exclude repeated for several).
//
// Only nodes of the deployment may ask: the request carries a query
// context (cache.ContextHeader) for the project and table, signed with the
// deployment's secret.
func UnflushedHandler(in *Ingester, secret []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		project, table := q.Get("project"), q.Get("table")
		t, err := schema.Lookup(table)
		if project == "" || err != nil {
			http.Error(w, "want project and table (records or metrics)", http.StatusBadRequest)
			return
		}
		var f engine.Need
		for name, dst := range map[string]*time.Time{"min": &f.Min, "max": &f.Max} {
			if v := q.Get(name); v != "" {
				us, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					http.Error(w, name+" must be Unix microseconds", http.StatusBadRequest)
					return
				}
				*dst = time.UnixMicro(us).UTC()
			}
		}
		f.TraceIDs, f.Exclude = q["trace_id"], q["exclude"]
		if q.Has("columns") {
			f.Columns = strings.Split(q.Get("columns"), ",") // "": time column and trace_id only
		}
		if err := cache.CheckContext(secret, r.Header.Get(cache.ContextHeader), project, table, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		batches, pending, release, err := in.Snapshot(r.Context(), project, table, f)
		defer release()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		meta := arrow.NewMetadata([]string{pendingMeta}, []string{strings.Join(pending, "\n")})
		w.Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
		fields := t.Schema.Fields()
		if len(batches) > 0 {
			fields = batches[0].Schema().Fields() // the columns asked for
		}
		iw := ipc.NewWriter(w, ipc.WithSchema(arrow.NewSchema(fields, &meta)))
		for _, b := range batches {
			if err := iw.Write(b); err != nil {
				return // the client went away; it sees a cut stream
			}
		}
		iw.Close()
	})
}

// Peers is a query node's view of the ingest nodes: a FreshSource that
// asks each of them for its unflushed rows.
type Peers struct {
	client *http.Client
	secret []byte // signs each request's query context
	nodes  atomic.Pointer[[]string]
	failed atomic.Int64
	// kept are nodes that left the list (no fresh heartbeat: they may
	// have lost the catalog, and hold all they acknowledged since), asked
	// until they have failed to answer for keptFor, with when they began
	// to fail (zero while they answer).
	keptMu  sync.Mutex
	kept    map[string]time.Time
	lastLog atomic.Int64
	lastDup atomic.Int64 // when a node answering twice was last logged (Unix s)
}

// NewPeers asks the ingest nodes at the given admin addresses; Watch adds
// those announced in the catalog. timeout bounds each node's answer;
// secret is the deployment's (catalog.Store.ClusterSecret).
func NewPeers(static []string, timeout time.Duration, secret []byte) *Peers {
	p := &Peers{client: &http.Client{Timeout: timeout}, secret: secret, kept: map[string]time.Time{}}
	p.nodes.Store(&static)
	return p
}

// Watch keeps the node list to static plus the ingest nodes with a
// heartbeat younger than ttl: set once before it returns, then polled in
// the background until ctx ends.
func (p *Peers) Watch(ctx context.Context, cat catalog.Store, static []string, interval, ttl time.Duration) {
	catalog.WatchNodeRows(ctx, cat, Role, static, interval, ttl, p.setNodes)
}

// setNodes makes addrs the listed nodes. A node that leaves the list with
// its heartbeat aged out (stale) is kept and asked while it answers: a
// node cut off from the catalog stops its heartbeat but goes on
// acknowledging rows it cannot flush. One that left the catalog (it
// stopped cleanly, everything flushed) is not asked again.
func (p *Peers) setNodes(addrs, stale []string) {
	p.keptMu.Lock()
	defer p.keptMu.Unlock()
	for _, a := range *p.nodes.Load() {
		if _, kept := p.kept[a]; !kept && !slices.Contains(addrs, a) && slices.Contains(stale, a) {
			p.kept[a] = time.Time{}
			slog.Warn("query: an ingest node has no fresh heartbeat in the catalog; still asked for its unflushed rows while it answers", "node", a)
		}
	}
	for a := range p.kept {
		if slices.Contains(addrs, a) || !slices.Contains(stale, a) {
			delete(p.kept, a)
		}
	}
	p.nodes.Store(&addrs)
}

// asked is the listed nodes and the kept ones.
func (p *Peers) asked() []string {
	nodes := slices.Clone(*p.nodes.Load())
	p.keptMu.Lock()
	defer p.keptMu.Unlock()
	for a := range p.kept {
		if !slices.Contains(nodes, a) {
			nodes = append(nodes, a)
		}
	}
	return nodes
}

// keptFor is how long a node without a heartbeat may fail to answer (each
// of those queries counting its rows missing) before it is no longer
// asked: one slow answer or restart must not hide its rows for good.
var keptFor = time.Minute

// answered notes how a kept node answered, and forgets one that has
// failed for keptFor.
func (p *Peers) answered(addr string, ok bool) {
	p.keptMu.Lock()
	defer p.keptMu.Unlock()
	since, kept := p.kept[addr]
	switch {
	case !kept:
	case ok:
		p.kept[addr] = time.Time{}
	case since.IsZero():
		p.kept[addr] = time.Now()
	case time.Since(since) >= keptFor:
		delete(p.kept, addr)
		slog.Warn("query: an ingest node without a heartbeat has not answered for a while; no longer asked", "node", addr, "for", time.Since(since).Round(time.Second))
	}
}

// Failures counts node requests that failed (their rows were left out).
func (p *Peers) Failures() int64 { return p.failed.Load() }

// Snapshot asks every ingest node at once. A node that does not answer is
// left out — its unflushed rows are missing from this query, what is in
// files and on the other nodes is served — and logged and counted, and the
// error is an *engine.SourcesMissing beside the rows. It fails no other
// way: a dead ingest node must not stop dashboards over the lake.
func (p *Peers) Snapshot(ctx context.Context, project, table string, f engine.Need) ([]arrow.RecordBatch, []string, func(), error) {
	nodes := p.asked()
	type answer struct {
		batches []arrow.RecordBatch
		pending []string
		err     error
	}
	answers := make([]answer, len(nodes))
	var wg sync.WaitGroup
	for i, addr := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &answers[i]
			a.batches, a.pending, a.err = p.ask(ctx, addr, project, table, f)
		}()
	}
	wg.Wait()
	var batches []arrow.RecordBatch
	var pending []string
	var errs []error
	seen := map[string]string{} // pending key → the node that answered with it
	for i, a := range answers {
		p.answered(nodes[i], a.err == nil)
		if a.err != nil {
			errs = append(errs, fmt.Errorf("ingest node %s: %w", nodes[i], a.err))
			continue
		}
		// One node listed under two addresses (a name and the IP it
		// announces) answers twice; a WAL segment is one node's, so an
		// answer naming a segment another answer named is that node again.
		if other, dup := firstSeen(seen, a.pending); dup {
			release(a.batches)
			if now := time.Now().Unix(); p.lastDup.Swap(now) < now-60 { // at most once a minute
				slog.Warn("query: one ingest node is listed under two addresses; its rows are read once", "addresses", []string{other, nodes[i]})
			}
			continue
		}
		for _, k := range a.pending {
			seen[k] = nodes[i]
		}
		batches = append(batches, a.batches...)
		pending = append(pending, a.pending...)
	}
	release := func() {
		for _, b := range batches {
			b.Release()
		}
	}
	if len(errs) > 0 && ctx.Err() == nil {
		p.failed.Add(int64(len(errs)))
		if now := time.Now().Unix(); p.lastLog.Swap(now) != now { // at most once a second
			slog.Warn("query: unflushed rows of some ingest nodes left out", "err", errors.Join(errs...))
		}
		return batches, pending, release, &engine.SourcesMissing{N: len(errs), Err: errors.Join(errs...)}
	}
	return batches, pending, release, nil
}

// firstSeen returns the node that answered first with one of keys, if any.
func firstSeen(seen map[string]string, keys []string) (string, bool) {
	for _, k := range keys {
		if node, ok := seen[k]; ok {
			return node, true
		}
	}
	return "", false
}

// ask fetches one node's unflushed rows.
func (p *Peers) ask(ctx context.Context, addr, project, table string, f engine.Need) ([]arrow.RecordBatch, []string, error) {
	q := url.Values{"project": {project}, "table": {table}, "trace_id": f.TraceIDs, "exclude": f.Exclude}
	if f.Columns != nil {
		q.Set("columns", strings.Join(f.Columns, ","))
	}
	if !f.Min.IsZero() {
		q.Set("min", strconv.FormatInt(f.Min.UnixMicro(), 10))
	}
	if !f.Max.IsZero() {
		q.Set("max", strconv.FormatInt((f.Max.UnixNano()+999)/1000, 10))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+UnflushedPath+"?"+q.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set(cache.ContextHeader, cache.SignContext(p.secret, project, table, time.Now()))
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	r, err := ipc.NewReader(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	defer r.Release()
	t, err := schema.Lookup(table)
	if err != nil {
		return nil, nil, err
	}
	var batches []arrow.RecordBatch
	for r.Next() {
		// A node of another schema version answers with other columns.
		b, err := f.Conform(t, r.RecordBatch())
		if err != nil {
			release(batches)
			return nil, nil, err
		}
		batches = append(batches, b)
	}
	if err := r.Err(); err != nil {
		release(batches)
		return nil, nil, err
	}
	var pending []string
	if v, ok := r.Schema().Metadata().GetValue(pendingMeta); ok && v != "" {
		pending = strings.Split(v, "\n")
	}
	return batches, pending, nil
}

package cache_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/oklog/ulid/v2"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/internal/testenv"
	"github.com/strata-db/strata/objstore"
)

// world is a catalog and an object store holding some data files.
type world struct {
	cat    catalog.Store
	bucket *objstore.Bucket
	files  []catalog.File
	data   map[string][]byte
	secret []byte // the deployment's, from the catalog
}

// headers are what a query node sends to read key for project.
func (w *world) headers(project, key string) map[string]string {
	return map[string]string{cache.ProjectHeader: project, cache.ContextHeader: cache.SignContext(w.secret, project, key, time.Now())}
}

// newWorld puts n random objects of the default project (and one of
// project "other") in bucketURL and registers them in a SQLite catalog.
func newWorld(t *testing.T, bucketURL string, n, size int) *world {
	t.Helper()
	ctx := context.Background()
	cat := testenv.SQLiteCatalog(t, t.TempDir(), catalog.Options{})
	if err := cat.CreateProject(ctx, catalog.Project{ID: "other", Name: "other"}); err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Bucket(t, bucketURL)
	secret, err := cat.ClusterSecret(ctx)
	if err != nil || len(secret) < 16 {
		t.Fatalf("cluster secret: %x %v", secret, err)
	}
	if again, _ := cat.ClusterSecret(ctx); !bytes.Equal(again, secret) {
		t.Fatal("the cluster secret changed between reads")
	}
	w := &world{cat: cat, bucket: bucket, data: map[string][]byte{}, secret: secret}
	hour := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i := range n + 1 {
		project := catalog.DefaultProject
		if i == n {
			project = "other"
		}
		key := objstore.DataKey(project, "records", hour, 0, objstore.NewID(hour))
		data := make([]byte, size+i)
		rand.Read(data)
		if err := bucket.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
		f := catalog.File{Key: key, Project: project, Table: "records", Partition: objstore.Partition(hour),
			MinTime: hour, MaxTime: hour.Add(time.Minute), Rows: 1, Bytes: int64(len(data)), SchemaVersion: 1}
		if err := cat.RegisterFiles(ctx, f); err != nil {
			t.Fatal(err)
		}
		w.data[key] = data
		if project == catalog.DefaultProject {
			w.files = append(w.files, f)
		}
	}
	return w
}

// otherKey is the object of project "other".
func (w *world) otherKey() string {
	for k := range w.data {
		if strings.HasPrefix(k, "other/") {
			return k
		}
	}
	panic("no object of project other")
}

// startNode runs a cache node over w on a loopback port until stop or the
// test ends.
func startNode(t *testing.T, w *world, size int64) (addr string, node *cache.Node, stop func()) {
	t.Helper()
	m := cache.NewMetrics()
	store, err := cache.OpenStore(t.TempDir(), size, m)
	if err != nil {
		t.Fatal(err)
	}
	node = &cache.Node{Store: store, Bucket: w.bucket, Catalog: w.cat, M: m, Secret: w.secret}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: node.Handler(http.NotFoundHandler())}
	go srv.Serve(ln)
	var once sync.Once
	stop = func() { once.Do(func() { srv.Close() }) } // drops requests in flight, like a killed process
	t.Cleanup(stop)
	return ln.Addr().String(), node, stop
}

// newClient reads w's objects through a ring of addrs, keeping copies in
// a local store of localBytes (none if 0; its directory is returned) and
// per-query copies in a directory of their own.
func newClient(t *testing.T, w *world, localBytes int64, addrs ...string) (*cache.Client, *cache.Metrics, string) {
	t.Helper()
	m := cache.NewMetrics()
	o := cache.ClientOptions{Ring: cache.NewRing(addrs...), TransientDir: t.TempDir(), Metrics: m, Secret: w.secret}
	dir := t.TempDir()
	if localBytes > 0 {
		local, err := cache.OpenStore(dir, localBytes, m)
		if err != nil {
			t.Fatal(err)
		}
		o.Local = local
	}
	client, err := cache.NewClient(w.bucket, o)
	if err != nil {
		t.Fatal(err)
	}
	return client, m, dir
}

// rawGet sends path exactly as given (no client-side cleaning) and returns
// the status and body.
func rawGet(t *testing.T, addr, path string, header map[string]string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", path, addr)
	for k, v := range header {
		fmt.Fprintf(c, "%s: %s\r\n", k, v)
	}
	io.WriteString(c, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestNode_ServesObjectsWithRanges(t *testing.T) {
	w := newWorld(t, "file://"+t.TempDir(), 1, 100_000)
	addr, node, _ := startNode(t, w, 1<<20)
	f := w.files[0]
	get := func(rng string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/objects/"+f.Key, nil)
		for k, v := range w.headers(f.Project, f.Key) {
			req.Header.Set(k, v)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i, want := range []string{"miss", "hit"} {
		resp := get("")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(body, w.data[f.Key]) || resp.Header.Get(cache.HitHeader) != want {
			t.Fatalf("GET %d: %s, %d bytes, %s=%q", i, resp.Status, len(body), cache.HitHeader, resp.Header.Get(cache.HitHeader))
		}
	}
	resp := get("bytes=1000-1099")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, w.data[f.Key][1000:1100]) {
		t.Fatalf("range: %s, %d bytes", resp.Status, len(body))
	}
	if node.M.Hits() != 2 || node.M.Misses() != 1 || node.M.Fills() != 1 {
		t.Fatalf("hits %v misses %v fills %v, want 2, 1, 1", node.M.Hits(), node.M.Misses(), node.M.Fills())
	}
	// The last zero bytes, however written: unsatisfiable; beside other
	// ranges, left out.
	for _, rng := range []string{"bytes=-0", "bytes=-00", "bytes=-+0", "bytes=- 0", "bytes=-\t0", "bytes=-0, -000"} {
		resp = get(rng)
		resp.Body.Close()
		if want := fmt.Sprintf("bytes */%d", len(w.data[f.Key])); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != want {
			t.Fatalf("%q: %s, Content-Range %q, want 416 and %q", rng, resp.Status, resp.Header.Get("Content-Range"), want)
		}
	}
	for _, rng := range []string{"bytes=0-0,-0", "bytes=0-0,-+0"} {
		resp = get(rng)
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("bytes 0-0/%d", len(w.data[f.Key])); resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != want || !bytes.Equal(body, w.data[f.Key][:1]) {
			t.Fatalf("%s: %s, Content-Range %q, %d bytes; want 206 %q and the first byte", rng, resp.Status, resp.Header.Get("Content-Range"), len(body), want)
		}
	}
	// A suffix that is not one (--0) is net/http's to refuse.
	resp = get("bytes=--0, 0-1")
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("bytes=--0, 0-1: %s, want 416 (an invalid range)", resp.Status)
	}
	// Preconditions come before Range: If-Range that cannot match sends
	// the whole object, If-None-Match: * is 304, a failed If-Match 412.
	for header, want := range map[[2]string]int{
		{"If-Range", `"x"`}:    http.StatusOK,
		{"If-None-Match", "*"}: http.StatusNotModified,
		{"If-Match", `"x"`}:    http.StatusPreconditionFailed,
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/objects/"+f.Key, nil)
		for k, v := range w.headers(f.Project, f.Key) {
			req.Header.Set(k, v)
		}
		req.Header.Set("Range", "bytes=-0")
		req.Header.Set(header[0], header[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || want == http.StatusOK && !bytes.Equal(body, w.data[f.Key]) {
			t.Fatalf("bytes=-0 with %s: %s: %s, %d bytes; want %d", header[0], header[1], resp.Status, len(body), want)
		}
	}
}

// Objects of several fill parts come from the S3 server as parallel
// ranges, byte for byte; a catalog size that does not match the object is
// refused rather than cached short.
func TestNode_FillsLargeObjectsInRanges(t *testing.T) {
	w := newWorld(t, testenv.S3URL(t), 2, 65<<20) // 2 ranges and a bit
	_, node, _ := startNode(t, w, 1<<30)
	ctx := context.Background()
	for _, f := range w.files {
		path, release, hit, err := node.Get(ctx, f.Key, f.Bytes)
		if err != nil || hit {
			t.Fatalf("%s: hit %v, %v", f.Key, hit, err)
		}
		got, err := os.ReadFile(path)
		release()
		if err != nil || !bytes.Equal(got, w.data[f.Key]) {
			t.Fatalf("%s: %d bytes read back, want the %d stored (%v)", f.Key, len(got), len(w.data[f.Key]), err)
		}
	}
	other := w.otherKey()
	if _, _, _, err := node.Get(ctx, other, int64(len(w.data[other]))-1); err == nil {
		t.Fatal("an object one byte longer than the catalog says was cached")
	}
}

func TestNode_RefusesBadKeys(t *testing.T) {
	w := newWorld(t, "file://"+t.TempDir(), 1, 1000)
	addr, node, _ := startNode(t, w, 1<<20)
	// A secret beside the cache directory that no request may reveal.
	secret := "TOP-SECRET-" + testenv.RandomHex(8)
	os.WriteFile(filepath.Join(filepath.Dir(node.Store.Dir()), "secret"), []byte(secret), 0o644)
	good := w.files[0].Key
	own := w.headers(catalog.DefaultProject, good)
	missing := "default/records/date=2026-11-23/hour=10/0-01JZZZZZZZZZZZZZZZZZZZZZZZ.parquet"
	cases := []struct {
		path   string
		header map[string]string
		status int
	}{
		{"/objects/../secret", own, 400},
		{"/objects/../../../../etc/passwd", own, 400},
		{"/objects/default/../../secret", own, 400},
		{"/objects/%2e%2e/secret", own, 400},
		{"/objects/%2E%2E%2Fsecret", own, 400},
		{"/objects/default%2F..%2F..%2Fsecret", own, 400},
		{"/objects//etc/passwd", own, 400},
		{"/objects/%2Fetc%2Fpasswd", own, 400},
		{"/objects/..%5csecret", own, 400},
		{"/objects/secret", own, 400},                                              // not a data key
		{"/objects/" + good, nil, 403},                                             // no project
		{"/objects/" + good, map[string]string{cache.ProjectHeader: "other"}, 403}, // another project's key
		{"/objects/" + w.otherKey(), own, 403},
		{"/objects/" + w.otherKey(), w.headers("other", good), 403}, // signed for another object
		// The project header alone, as anyone could write it: refused.
		{"/objects/" + good, map[string]string{cache.ProjectHeader: catalog.DefaultProject}, 403},
		{"/objects/" + good, map[string]string{cache.ProjectHeader: catalog.DefaultProject, cache.ContextHeader: "9999999999.00ff"}, 403},
		{"/objects/" + good, map[string]string{cache.ProjectHeader: catalog.DefaultProject,
			cache.ContextHeader: cache.SignContext([]byte("not the deployment's"), catalog.DefaultProject, good, time.Now())}, 403},
		{"/objects/" + good, map[string]string{cache.ProjectHeader: catalog.DefaultProject,
			cache.ContextHeader: cache.SignContext(w.secret, catalog.DefaultProject, good, time.Now().Add(-time.Hour))}, 403}, // expired
		{"/objects/" + missing, w.headers(catalog.DefaultProject, missing), 404},
	}
	for _, tc := range cases {
		status, body := rawGet(t, addr, tc.path, tc.header)
		if status != tc.status {
			t.Errorf("GET %s: %d %s, want %d", tc.path, status, body, tc.status)
		}
		if strings.Contains(body, secret) || strings.Contains(body, "root:") {
			t.Errorf("GET %s leaked a file", tc.path)
		}
	}
	if status, _ := rawGet(t, addr, "/objects/"+good, own); status != 200 {
		t.Fatalf("good key after the bad ones: %d", status)
	}
}

func TestRing_OnlyTheChangedNodesShareMoves(t *testing.T) {
	keys := make([]string, 20_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("default/records/date=2026-11-23/hour=%02d/0-%06d.parquet", i%24, i)
	}
	owners := func(r *cache.Ring) []string {
		out := make([]string, len(keys))
		for i, k := range keys {
			out[i] = r.Owner(k)
		}
		return out
	}
	moved := func(a, b []string) float64 {
		n := 0
		for i := range a {
			if a[i] != b[i] {
				n++
			}
		}
		return float64(n) / float64(len(a))
	}
	for _, n := range []int{2, 3, 4, 8} {
		addrs := make([]string, n+1)
		for i := range addrs {
			addrs[i] = fmt.Sprintf("10.0.0.%d:9001", i+1)
		}
		r := cache.NewRing(addrs[:n]...)
		before := owners(r)
		r.Set(addrs) // one joins
		joined := owners(r)
		if f := moved(before, joined); f > 1.5/float64(n+1) {
			t.Errorf("%d→%d nodes: %.1f%% of keys moved, want ≤ %.1f%%", n, n+1, 100*f, 150/float64(n+1))
		}
		r.Set(addrs[1:]) // another leaves
		left := owners(r)
		if f := moved(joined, left); f > 1.5/float64(n+1) {
			t.Errorf("%d→%d nodes: %.1f%% of keys moved, want ≤ %.1f%%", n+1, n, 100*f, 150/float64(n+1))
		}
		for i, o := range left {
			if o == addrs[0] {
				t.Fatalf("key %s still owned by the node that left", keys[i])
			}
		}
	}
	if cache.NewRing().Owner("x") != "" {
		t.Error("an empty ring has an owner")
	}
}

// TestClient_NodeKilledUnderLoad reads objects through a ring of three
// cache nodes over a real S3-compatible server while one node is killed:
// no read fails, every byte is right, and the dead node's keys go to the
// object store until it is back.
func TestClient_NodeKilledUnderLoad(t *testing.T) {
	w := newWorld(t, testenv.S3URL(t), 60, 20_000)
	var addrs []string
	var stops []func()
	for range 3 {
		a, _, stop := startNode(t, w, 1<<30)
		addrs = append(addrs, a)
		stops = append(stops, stop)
	}
	client, m, _ := newClient(t, w, 400_000, addrs...) // room for a fraction: reads keep going to the nodes
	ctx := context.Background()
	var reads, failures atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; time.Now().Before(deadline); i++ {
				f := w.files[i%len(w.files)]
				p, release, _, err := client.Acquire(ctx, f.Project, f.Key, f.Bytes)
				if err != nil {
					t.Errorf("read %s: %v", f.Key, err)
					failures.Add(1)
					continue
				}
				got, err := os.ReadFile(p)
				release()
				if err != nil || !bytes.Equal(got, w.data[f.Key]) {
					t.Errorf("read %s: %d bytes, %v", f.Key, len(got), err)
					failures.Add(1)
				}
				reads.Add(1)
			}
		}()
	}
	time.Sleep(time.Second)
	stops[1]() // killed mid-load
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d reads failed", failures.Load(), reads.Load())
	}
	if m.Fallbacks() == 0 {
		t.Fatal("no read fell back to the object store after a node was killed")
	}
	t.Logf("%d reads, %v fallbacks to the object store", reads.Load(), m.Fallbacks())
}

// An object larger than the whole cache is served straight from the
// object store, ranges included, and only if its size is the catalog's.
func TestNode_PassThroughHonoursRangesAndSizes(t *testing.T) {
	w := newWorld(t, "file://"+t.TempDir(), 1, 100_000)
	addr, _, _ := startNode(t, w, 1000)
	f := w.files[0]
	get := func(key, rng string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/objects/"+key, nil)
		for k, v := range w.headers(f.Project, key) {
			req.Header.Set(k, v)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if code, body := get(f.Key, ""); code != 200 || !bytes.Equal(body, w.data[f.Key]) {
		t.Fatalf("whole object: %d, %d bytes", code, len(body))
	}
	if code, body := get(f.Key, "bytes=5000-5099"); code != http.StatusPartialContent || !bytes.Equal(body, w.data[f.Key][5000:5100]) {
		t.Fatalf("range: %d, %d bytes", code, len(body))
	}
	// The catalog says less than the object holds: refused, not cut short.
	ctx := context.Background()
	wrong := f
	wrong.Key = objstore.DataKey(f.Project, f.Table, f.MinTime, 0, ulid.Make())
	wrong.Bytes = 50_000
	if err := w.bucket.Put(ctx, wrong.Key, w.data[f.Key]); err != nil {
		t.Fatal(err)
	}
	if err := w.cat.RegisterFiles(ctx, wrong); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(wrong.Key, ""); code != http.StatusBadGateway {
		t.Fatalf("object of 100000 bytes the catalog says is 50000: %d, want 502", code)
	}
}

// With no cache node left (all gone, or none deployed), a query node
// reads from the object store.
func TestClient_NoCacheNodeReadsTheObjectStore(t *testing.T) {
	w := newWorld(t, testenv.S3URL(t), 3, 10_000)
	client, _, _ := newClient(t, w, 1<<20)
	for _, f := range w.files {
		p, release, _, err := client.Acquire(context.Background(), f.Project, f.Key, f.Bytes)
		if err != nil {
			t.Fatalf("with no cache node: %v", err)
		}
		got, _ := os.ReadFile(p)
		release()
		if !bytes.Equal(got, w.data[f.Key]) {
			t.Fatalf("%s: %d bytes, not the object", f.Key, len(got))
		}
	}
}

// An owner that stalls mid-body, sends more bytes than the object has, or
// fewer, counts as failed: the read falls back to the object store, and
// the local copy stays within its limit.
func TestClient_MisbehavingOwnerFallsBack(t *testing.T) {
	defer cache.SetBodyIdle(300 * time.Millisecond)()
	w := newWorld(t, testenv.S3URL(t), 3, 100_000)
	for _, mode := range []string{"stall", "long", "short"} {
		t.Run(mode, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release) // the stalled handler returns as the subtest ends
			addr := fakeNode(t, func(rw http.ResponseWriter, r *http.Request) {
				switch mode {
				case "stall":
					rw.Header().Set("Content-Length", "100000")
					rw.Write(make([]byte, 1000))
					rw.(http.Flusher).Flush()
					select {
					case <-release:
					case <-r.Context().Done():
					}
				case "long":
					rw.Write(make([]byte, 5<<20))
				case "short":
					rw.Write(make([]byte, 10))
				}
			})
			client, m, dir := newClient(t, w, 1<<20, addr)
			f := w.files[0]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p, rel, _, err := client.Acquire(ctx, f.Project, f.Key, f.Bytes)
			if err != nil {
				t.Fatalf("read through an owner that misbehaves (%s): %v", mode, err)
			}
			got, _ := os.ReadFile(p)
			rel()
			if !bytes.Equal(got, w.data[f.Key]) || m.Fallbacks() != 1 {
				t.Fatalf("%s: %d bytes, object's: %v; %v fallbacks", mode, len(got), bytes.Equal(got, w.data[f.Key]), m.Fallbacks())
			}
			if n := dirBytes(t, dir); n > 1<<20 {
				t.Fatalf("%s: the local store holds %d bytes, over its 1 MiB", mode, n)
			}
		})
	}
}

// A read its query gave up (a hang-up, a dashboard refresh) or ran out of
// time for, on a node that is slow but answers, does not count against the
// node: the next read still goes there.
func TestClient_CancelledReadKeepsTheOwnerUp(t *testing.T) {
	w := newWorld(t, testenv.S3URL(t), 3, 100_000)
	var served atomic.Int64
	addr := fakeNode(t, func(rw http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/objects/")
		if key == "" {
			return // a probe: answered at once (200 here, 400 from a node)
		}
		served.Add(1)
		if served.Load() <= 2 {
			time.Sleep(300 * time.Millisecond) // the first reads outlast their queries
		}
		rw.Write(w.data[key])
	})
	// No local store: reads go through per-query copies, on the query's context.
	client, m, _ := newClient(t, w, 0, addr)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel) // the client hangs up
	f := w.files[0]
	if _, _, _, err := client.Acquire(ctx, f.Project, f.Key, f.Bytes); err == nil {
		t.Fatal("a read cancelled by its query succeeded")
	}
	// A query with a short time limit, on a node slower than that.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, _, err := client.Acquire(ctx, f.Project, f.Key, f.Bytes); err == nil {
		t.Fatal("a read past its query's time limit succeeded")
	}
	f = w.files[1]
	_, rel, _, err := client.Acquire(context.Background(), f.Project, f.Key, f.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	if m.Fallbacks() != 0 || served.Load() != 3 {
		t.Fatalf("after a cancelled and a timed-out read: %v fallbacks, the node served %d reads; want it still used", m.Fallbacks(), served.Load())
	}
}

// A node that takes connections but never answers is found out by a
// probe once a read gave up waiting for it, even when queries' time limits
// are shorter than the client's own timeouts: the later reads fall back
// to the object store instead of timing out too.
func TestClient_HungOwnerIsMarkedDownByAProbe(t *testing.T) {
	defer cache.SetProbeTimeout(200 * time.Millisecond)()
	w := newWorld(t, testenv.S3URL(t), 4, 10_000)
	addr := silentNode(t)
	// With a local store, as a query node has: its fills outlive queries.
	client, _, _ := newClient(t, w, 1<<20, addr)
	read := func(f catalog.File) error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, rel, _, err := client.Acquire(ctx, f.Project, f.Key, f.Bytes)
		if err == nil {
			rel()
		}
		return err
	}
	if err := read(w.files[0]); err == nil {
		t.Fatal("a read from a node that never answers succeeded")
	}
	time.Sleep(300 * time.Millisecond) // the probe's time
	for _, f := range w.files[1:] {
		if err := read(f); err != nil {
			t.Fatalf("after the probe, a read still waited for the hung node: %v", err)
		}
	}
}

// An owner that answers, but refuses one object (not in its catalog, a
// fill that failed there), is not skipped for the others: one bad object
// sent every query's reads to the object store for a minute.
func TestClient_OwnerRefusingOneObjectStaysUp(t *testing.T) {
	w := newWorld(t, testenv.S3URL(t), 3, 10_000)
	refused := w.files[0].Key
	var served atomic.Int64
	addr := fakeNode(t, func(rw http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/objects/")
		if key == refused {
			http.Error(rw, "no such file in the catalog", http.StatusNotFound)
			return
		}
		served.Add(1)
		rw.Write(w.data[key])
	})
	client, m, _ := newClient(t, w, 1<<20, addr)
	readEach(t, w, client)
	if m.Fallbacks() != 1 || served.Load() != int64(len(w.files)-1) {
		t.Fatalf("%v fallbacks, the owner served %d of the %d other objects; want only the refused one from the object store",
			m.Fallbacks(), served.Load(), len(w.files)-1)
	}
}

// A read from a node that takes connections but never answers falls back
// to the object store once a probe finds the node silent, within the
// query's time limit: it used to wait for the transport's 30 s.
func TestClient_HungOwnerFallsBackWithinTheQuery(t *testing.T) {
	defer cache.SetProbeTimeout(200 * time.Millisecond)()
	defer cache.SetAnswerWithin(100 * time.Millisecond)()
	w := newWorld(t, testenv.S3URL(t), 2, 10_000)
	addr := silentNode(t)
	client, m, _ := newClient(t, w, 1<<20, addr)
	f := w.files[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // under the transport's 30 s
	defer cancel()
	p, rel, _, err := client.Acquire(ctx, f.Project, f.Key, f.Bytes)
	if err != nil {
		t.Fatalf("a read whose owner hangs: %v", err)
	}
	got, _ := os.ReadFile(p)
	rel()
	if !bytes.Equal(got, w.data[f.Key]) || m.Fallbacks() != 1 {
		t.Fatalf("%d bytes (object's: %v), %v fallbacks", len(got), bytes.Equal(got, w.data[f.Key]), m.Fallbacks())
	}
}

// Queries that read one object at once share one fill; each counts the
// bytes where that fill got them: from the owner's cache here, for all of
// them (only the query whose fill ran did).
func TestClient_WaitersCountBytesWhereTheSharedFillGotThem(t *testing.T) {
	w := newWorld(t, testenv.S3URL(t), 1, 10_000)
	addr := fakeNode(t, func(rw http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/objects/")
		time.Sleep(300 * time.Millisecond) // long enough for every reader to wait on the one fill
		rw.Header().Set(cache.HitHeader, "hit")
		rw.Write(w.data[key])
	})
	client, _, _ := newClient(t, w, 1<<20, addr)
	f := w.files[0]
	var wg sync.WaitGroup
	cached := make([]bool, 4)
	for i := range cached {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rel, c, err := client.Acquire(context.Background(), f.Project, f.Key, f.Bytes)
			if err != nil {
				t.Error(err)
				return
			}
			rel()
			cached[i] = c
		}()
	}
	wg.Wait()
	for i, c := range cached {
		if !c {
			t.Errorf("reader %d: bytes counted as from the object store; the owner's cache sent them (%v)", i, cached)
			break
		}
	}
}

// readEach reads every object of w through client, each within 10 s (under
// the client's transport timeout), and checks its bytes.
func readEach(t *testing.T, w *world, client *cache.Client) {
	t.Helper()
	for _, f := range w.files {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p, rel, _, err := client.Acquire(ctx, f.Project, f.Key, f.Bytes)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p)
		rel()
		if !bytes.Equal(got, w.data[f.Key]) {
			t.Fatalf("%s: wrong bytes", f.Key)
		}
	}
}

// fakeNode serves handler as a cache node would be reached, until the
// test ends, and returns its address.
func fakeNode(t *testing.T, handler http.HandlerFunc) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// silentNode is the address of a node that takes connections and never
// answers on them.
func silentNode(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// hungCatalog never answers File, as a catalog whose database hangs.
type hungCatalog struct {
	catalog.Store
	calls *atomic.Int64
}

func (h hungCatalog) File(ctx context.Context, key string) (catalog.File, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return catalog.File{}, ctx.Err()
}

// A node whose catalog hangs answers 503 soon, and its clients skip it as
// unwell, where they used to wait for it, read after read: it answers
// probes, so it is not taken for a hung node.
func TestClient_NodeWhoseCatalogHangsIsSkipped(t *testing.T) {
	defer cache.SetCatalogTimeout(100 * time.Millisecond)()
	w := newWorld(t, testenv.S3URL(t), 3, 10_000)
	addr, node, _ := startNode(t, w, 1<<20)
	var calls atomic.Int64
	node.Catalog = hungCatalog{Store: w.cat, calls: &calls}
	client, _, _ := newClient(t, w, 1<<20, addr)
	readEach(t, w, client)
	if n := calls.Load(); n != 1 {
		t.Fatalf("the node was asked %d times; want once, then skipped", n)
	}
}

// flakyCatalog fails File the first fails times, as a catalog whose
// connection was reset.
type flakyCatalog struct {
	catalog.Store
	fails *atomic.Int64
}

func (f flakyCatalog) File(ctx context.Context, key string) (catalog.File, error) {
	if f.fails.Add(-1) >= 0 {
		return catalog.File{}, errors.New("connection reset by peer")
	}
	return f.Store.File(ctx, key)
}

// One failed catalog lookup on a node (not a catalog that hangs) is about
// that read: the node is not skipped for the others.
func TestClient_OneCatalogErrorOnANodeDoesNotSkipIt(t *testing.T) {
	w := newWorld(t, testenv.S3URL(t), 4, 10_000)
	addr, node, _ := startNode(t, w, 1<<20)
	var fails atomic.Int64
	fails.Store(1)
	node.Catalog = flakyCatalog{Store: w.cat, fails: &fails}
	client, m, _ := newClient(t, w, 1<<20, addr)
	readEach(t, w, client)
	if m.Fallbacks() != 1 || node.M.Misses() != float64(len(w.files)-1) {
		t.Fatalf("%v fallbacks, the node filled %v of %d; want only the first read from the object store",
			m.Fallbacks(), node.M.Misses(), len(w.files))
	}
}

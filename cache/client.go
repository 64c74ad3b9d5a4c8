package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/strata-db/strata/objstore"
)

// downFor is how long a cache node that failed a request is skipped:
// reads go straight to the object store meanwhile. It is long against the
// time a failure can take to show (a node that stopped answering costs a
// request its header or body timeout), so a hung node that still
// heartbeats stalls queries once a minute at most, not at every retry.
const downFor = time.Minute

// bodyIdle is how long a transfer from a cache node may go without a
// byte before the node counts as failed (a node paused mid-body). A
// variable for tests.
var bodyIdle = 10 * time.Second

// probeTimeout is how long a node has to answer a probe (see probe). A
// variable for tests.
var probeTimeout = 2 * time.Second

// answerWithin is how long a request to a cache node waits for an answer
// before the node is asked, on the side, whether it answers at all: a
// miss on the owner fetches from the object store before it answers, but
// a hung node would hold every query for the transport's 30 s. A variable
// for tests.
var answerWithin = time.Second

// errLocal wraps a failure to write the local copy (a full disk): the
// node is not at fault, and the object store would not do better.
var errLocal = errors.New("local copy")

// errRefused wraps a cache node's answer about one object (not in the
// catalog, a fill that failed): it says nothing of the node's health, and
// the node is not skipped for it.
var errRefused = errors.New("refused")

// Client makes objects local for a query node's DuckDB through the cache
// tier: each object is read from the node that owns it on the ring and
// kept in a small local store; when the owner fails, from the object
// store. An owner in the same process (strata serve) is read directly.
type Client struct {
	bucket *objstore.Bucket
	ring   *Ring
	self   string // address of the in-process node, if any
	node   *Node
	local  *Store
	// transientDir holds per-query copies of objects the cache cannot fit.
	transientDir string
	m            *Metrics
	http         *http.Client
	secret       []byte // signs query contexts (ContextHeader)

	// filledFrom says, for keys filled lately, whether the fill's bytes
	// came from the owner's cache: queries that waited for another's fill
	// count their bytes where that fill got them.
	filledFrom *lru.Cache[string, bool]
	probes     singleflight.Group

	mu   sync.Mutex
	down map[string]time.Time // owner address → skipped until
}

// ClientOptions configure a Client.
type ClientOptions struct {
	Ring *Ring
	// Self and Node are the in-process cache node and its ring address.
	Self string
	Node *Node
	// Local keeps copies of objects owned by other nodes; needed when the
	// ring has any.
	Local *Store
	// TransientDir holds copies of objects that do not fit in the cache,
	// for the query that reads them; emptied by NewClient.
	TransientDir string
	Metrics      *Metrics
	// Secret signs the query context of requests to other nodes.
	Secret []byte
}

// NewClient returns a client reading bucket through the ring.
func NewClient(bucket *objstore.Bucket, o ClientOptions) (*Client, error) {
	if o.Ring == nil {
		o.Ring = NewRing()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second, // a miss on the owner includes its object-store fetch
		MaxIdleConnsPerHost:   16,
	}
	if o.TransientDir != "" {
		os.RemoveAll(o.TransientDir) // copies of queries that ended with the last process
		if err := os.MkdirAll(o.TransientDir, 0o755); err != nil {
			return nil, fmt.Errorf("cache transient dir: %w", err)
		}
	}
	filledFrom, _ := lru.New[string, bool](4096)
	return &Client{bucket: bucket, ring: o.Ring, self: o.Self, node: o.Node, local: o.Local, transientDir: o.TransientDir,
		m: o.Metrics, http: &http.Client{Transport: tr}, down: map[string]time.Time{}, secret: o.Secret,
		filledFrom: filledFrom}, nil
}

// Dirs are the directories local paths can be in; DuckDB must be allowed
// to read them.
func (c *Client) Dirs() []string {
	var dirs []string
	if c.node != nil {
		dirs = append(dirs, c.node.Store.Dir())
	}
	if c.local != nil {
		dirs = append(dirs, c.local.Dir())
	}
	if c.transientDir != "" {
		dirs = append(dirs, c.transientDir)
	}
	if d, ok := c.bucket.LocalDir(); ok {
		dirs = append(dirs, d)
	}
	return dirs
}

// Acquire returns a local path holding the object key (size bytes, per the
// catalog) of project, valid until release is called. cached reports that
// the bytes came from a cache rather than the object store. An object the
// cache has no room for (a query reading more than the cache holds) gets a
// transient copy, deleted on release.
func (c *Client) Acquire(ctx context.Context, project, key string, size int64) (path string, release func(), cached bool, err error) {
	if p, ok := c.bucket.LocalPath(key); ok {
		// A local directory is read in place. A missing file is said so
		// here, by its key: DuckDB's error would hold the host's paths.
		if _, err := os.Stat(p); err != nil {
			return "", nil, false, fmt.Errorf("not in the object store: %w", errors.Unwrap(err))
		}
		return p, func() {}, false, nil
	}
	owner := c.ring.Owner(key)
	if c.node != nil && (owner == "" || owner == c.self) {
		path, release, hit, err := c.node.Get(ctx, key, size)
		if errors.Is(err, ErrFull) {
			path, release, err = c.transient(ctx, key, size, bucketFill(c.bucket, key, size))
		}
		return path, release, hit, err
	}
	var ran, ownerHit, answered atomic.Bool
	fill := func(ctx context.Context, f *os.File) (n int64, err error) {
		ran.Store(true)
		defer func() {
			if err == nil {
				c.filledFrom.Add(key, ownerHit.Load())
			}
		}()
		if owner == "" {
			// No cache node at all (all gone, or none deployed).
			return bucketFill(c.bucket, key, size)(ctx, f)
		}
		if c.isDown(owner) {
			c.m.fallbacks.Inc()
			return bucketFill(c.bucket, key, size)(ctx, f)
		}
		n, h, a, err := c.fromNode(ctx, owner, project, key, size, f)
		answered.Store(a)
		if err == nil {
			ownerHit.Store(h)
			return n, nil
		}
		if ctx.Err() != nil || errors.Is(err, errLocal) {
			return 0, err // the query ended first, or the disk is full: not the node's fault
		}
		// The owner failed: read the object store, and skip the owner
		// for a while unless it only refused this object.
		slog.Warn("cache: a cache node failed; reading from the object store", "node", owner, "key", key, "err", err)
		if !errors.Is(err, errRefused) {
			c.markDown(owner)
		}
		c.m.fallbacks.Inc()
		if err := restart(f); err != nil {
			return 0, err
		}
		return bucketFill(c.bucket, key, size)(ctx, f)
	}
	// A copy in the local store, shared by the queries reading key and
	// filled detached from them; or one of this query's own when there is
	// no store or no room in it.
	path, release, hit, err := "", func() {}, false, error(ErrFull)
	if c.local != nil {
		path, release, hit, err = c.local.Get(ctx, key, size, fill)
	}
	if errors.Is(err, ErrFull) {
		path, release, err = c.transient(ctx, key, size, fill)
	}
	if err != nil {
		if ctx.Err() != nil && owner != "" && !answered.Load() {
			// The query ended before the owner answered. It may be filling
			// a large miss — or hung, and then every query with a time
			// limit under the client's timeouts (or the shared fill's) would
			// wait for it again: ask it whether it answers at all.
			c.probe(owner)
		}
		return "", nil, false, err
	}
	cached = hit || ownerHit.Load()
	if !hit && !ran.Load() {
		cached, _ = c.filledFrom.Get(key) // another query's fill, awaited
	}
	return path, release, cached, nil
}

// transient fills a file of its own for key, removed on release.
func (c *Client) transient(ctx context.Context, key string, size int64, fill Fill) (string, func(), error) {
	if c.transientDir == "" {
		return "", nil, fmt.Errorf("fetch %s: %w", key, ErrFull)
	}
	path, err := fillTemp(ctx, c.transientDir, "*.parquet", size, fill)
	if err != nil {
		return "", nil, fmt.Errorf("fetch %s: %w", key, err)
	}
	c.m.transient.Inc()
	var once sync.Once
	return path, func() { once.Do(func() { os.Remove(path) }) }, nil
}

// fromNode copies key, of size bytes, from the cache node at addr into f.
// A node that sends anything else, or stops sending for bodyIdle, fails.
// answered reports that the node sent a response.
func (c *Client) fromNode(ctx context.Context, addr, project, key string, size int64, f *os.File) (n int64, hit, answered bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u := url.URL{Scheme: "http", Host: addr, Path: "/objects/" + key}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, false, false, err
	}
	req.Header.Set(ProjectHeader, project)
	req.Header.Set(ContextHeader, SignContext(c.secret, project, key, time.Now()))
	hung := errors.New("no answer, and none to a probe within " + probeTimeout.String())
	var headers atomic.Bool
	watch := time.AfterFunc(answerWithin, func() {
		if !c.answers(addr) && !headers.Load() {
			cancel(hung)
		}
	})
	resp, err := c.http.Do(req)
	headers.Store(true)
	watch.Stop()
	if err != nil {
		if context.Cause(ctx) == hung {
			err = fmt.Errorf("cache node %s: %w", addr, hung)
		}
		return 0, false, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		err := fmt.Errorf("cache node %s: %s: %s", addr, resp.Status, bytes.TrimSpace(msg))
		if resp.StatusCode < 500 || resp.StatusCode == http.StatusBadGateway {
			// About this object: not in the catalog, a bad range, a fill
			// from the object store that failed. Other 5xx (the node's
			// catalog is down) are about the node.
			err = fmt.Errorf("%w: %w", err, errRefused)
		}
		return 0, false, true, err
	}
	stalled := errors.New("no byte for " + bodyIdle.String())
	idle := time.AfterFunc(bodyIdle, func() { cancel(stalled) })
	defer idle.Stop()
	dst := &localFile{f: f}
	n, err = io.Copy(dst, io.LimitReader(progress{resp.Body, func() { idle.Reset(bodyIdle) }}, size+1))
	switch {
	case dst.err != nil:
		err = fmt.Errorf("%w: %w", errLocal, dst.err)
	case err != nil && context.Cause(ctx) == stalled:
		err = fmt.Errorf("cache node %s: %w", addr, stalled)
	}
	if err == nil && n != size {
		err = fmt.Errorf("cache node %s sent %d bytes, the catalog says %d", addr, n, size)
	}
	return n, resp.Header.Get(HitHeader) == "hit", true, err
}

// localFile is the local copy being written, keeping its write error
// apart from the node's read errors.
type localFile struct {
	f   *os.File
	err error
}

func (l *localFile) Write(b []byte) (int, error) {
	n, err := l.f.Write(b)
	if err != nil {
		l.err = err
	}
	return n, err
}

// progress calls moved after every read that returned bytes.
type progress struct {
	r     io.Reader
	moved func()
}

func (p progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.moved()
	}
	return n, err
}

// Warm asks key's owner to fetch it now, so the first query after a flush
// does not wait for the object store. Failures only cost that wait.
func (c *Client) Warm(ctx context.Context, project, key string, size int64) {
	if _, ok := c.bucket.LocalPath(key); ok {
		return
	}
	owner := c.ring.Owner(key)
	if owner == "" || c.node != nil && owner == c.self {
		if c.node != nil {
			go c.node.Warm(key, size)
		}
		return
	}
	if c.isDown(owner) {
		return
	}
	body, _ := json.Marshal(WarmRequest{Project: project, Key: key})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+owner+"/warm", bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set(ContextHeader, SignContext(c.secret, project, key, time.Now()))
	resp, err := c.http.Do(req)
	if err != nil {
		c.markDown(owner)
		return
	}
	resp.Body.Close()
}

// probe marks the node at addr down unless it answers (see answers, which
// runs one probe at a time per node).
func (c *Client) probe(addr string) {
	go func() {
		if !c.answers(addr) {
			c.markDown(addr)
		}
	}()
}

// answers reports whether the node at addr answers, within probeTimeout,
// a request it can answer at once (an empty key: 400). Reads waiting on
// one node share one probe.
func (c *Client) answers(addr string) bool {
	ok, _, _ := c.probes.Do(addr, func() (any, error) { return c.answersNow(addr), nil })
	return ok.(bool)
}

func (c *Client) answersNow(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/objects/", nil)
	if err != nil {
		return false
	}
	resp, err := c.http.Do(req)
	if err != nil {
		slog.Warn("cache: a cache node does not answer; skipping it", "node", addr, "err", err)
		return false
	}
	resp.Body.Close()
	return true
}

func (c *Client) isDown(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.down[addr])
}

func (c *Client) markDown(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[addr] = time.Now().Add(downFor)
}

// restart empties f for a second attempt.
func restart(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

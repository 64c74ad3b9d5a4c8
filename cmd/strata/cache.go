package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/objstore"
)

// Cache nodes announce themselves in the catalog every heartbeatEvery; a
// node silent for nodeTTL leaves the ring.
const (
	heartbeatEvery = 5 * time.Second
	nodeTTL        = 3 * heartbeatEvery
)

// cacheConfig are the cache tier's flags. Which ones a command has
// depends on its roles: a cache node stores, a query node reads through
// the ring, an ingest node warms it.
type cacheConfig struct {
	addr      string
	dir       string
	size      byteSize
	nodes     string
	localSize byteSize
	advertise string
	// which of the flags above the command has
	hasNode, hasLocal bool
}

func (c *cacheConfig) registerNode(cmd *command) {
	c.size, c.hasNode = 10<<30, true
	cmd.fs.StringVar(&c.addr, "cache-addr", "127.0.0.1:9001", "`address` of the cache node (GET /objects/{key}, POST /warm)")
	registerAdvertise(cmd, &c.advertise)
	cmd.fs.Var(&c.size, "cache-size", "most bytes of Parquet the cache node keeps on local SSD (`size`); least recently used files are evicted")
}

func (c *cacheConfig) registerDir(cmd *command) {
	cmd.fs.StringVar(&c.dir, "cache-dir", "", "`dir`ectory on local SSD for cached Parquet files and query spill; empty for DATA_DIR/cache")
}

func (c *cacheConfig) registerRing(cmd *command, query bool) {
	cmd.fs.StringVar(&c.nodes, "cache-nodes", "", "comma-separated `addresses` of cache nodes, besides those announced in the catalog")
	if query {
		c.localSize, c.hasLocal = 1<<30, true
		cmd.fs.Var(&c.localSize, "query-cache-size", "local copies a query node keeps of files owned by other cache nodes (`size`)")
	}
}

func (c *cacheConfig) resolveDir(dataDir string) error {
	if err := c.check(); err != nil {
		return err
	}
	if c.dir == "" {
		c.dir = filepath.Join(dataDir, "cache")
	}
	return ensureDir("cache-dir", c.dir)
}

func (c *cacheConfig) staticNodes() []string { return splitList(c.nodes) }

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// cacheNode is a running cache node's store and handler.
type cacheNode struct {
	node *cache.Node
	addr string
}

// apartFromObjects refuses a cache directory that holds, or lies inside,
// the directory of a file:// object store: the cache evicts what it finds
// in its directory, and would delete the lake.
func apartFromObjects(cacheDir string, bucket *objstore.Bucket) error {
	objects, ok := bucket.LocalDir()
	if !ok {
		return nil
	}
	a, err := realPath(cacheDir)
	if err != nil {
		return err
	}
	b, err := realPath(objects)
	if err != nil {
		return err
	}
	inside := func(dir, root string) bool {
		rel, err := filepath.Rel(root, dir)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	}
	if inside(a, b) || inside(b, a) {
		return settingError{"cache-dir", fmt.Errorf("%s overlaps the object store's directory %s; the cache deletes files it finds there", cacheDir, objects)}
	}
	return nil
}

// realPath is path made absolute with every symbolic link resolved — a
// link must not hide that two directories are one — as far as it exists.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest), nil
		}
		if dir == filepath.Dir(dir) {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

// check refuses cache sizes and node addresses the tier cannot work with.
func (c cacheConfig) check() error {
	switch {
	case c.hasNode && c.size < 1<<20:
		return settingError{"cache-size", fmt.Errorf("%v is under 1 MiB", &c.size)}
	case c.hasLocal && c.localSize < 1<<20:
		return settingError{"query-cache-size", fmt.Errorf("%v is under 1 MiB: a query node keeps its copies of other nodes' files there", &c.localSize)}
	}
	if err := checkHost(c.advertise); err != nil {
		return err
	}
	return checkAddrs("cache-nodes", c.staticNodes())
}

// checkAddrs refuses a list flag's addresses that are not host:port.
func checkAddrs(flag string, addrs []string) error {
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || strings.Contains(host, "/") || perr != nil || n < 1 || n > 65535 {
			return settingError{flag, fmt.Errorf("%q is not a host:port address", a)}
		}
	}
	return nil
}

// checkHost refuses an --advertise-host that is not a bare host: the port
// comes from each listener.
func checkHost(host string) error {
	if host == "" {
		return nil
	}
	bad := strings.ContainsFunc(host, func(r rune) bool { // a host name, an IPv4 or IPv6 address (zone included)
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:%", r))
	})
	if _, _, err := net.SplitHostPort(host); err == nil || bad {
		return settingError{"advertise-host", fmt.Errorf("%q is not a bare host name or address: each listener's port is added to it", host)}
	}
	return nil
}

func startCacheNode(ctx context.Context, c cacheConfig, ln net.Listener, cat catalog.Store, bucket *objstore.Bucket, reg *prometheus.Registry) (*cacheNode, error) {
	if err := apartFromObjects(c.dir, bucket); err != nil {
		return nil, err
	}
	m := cache.NewMetrics()
	reg.MustRegister(m.Collectors()...)
	store, err := cache.OpenStore(filepath.Join(c.dir, "objects"), int64(c.size), m)
	if err != nil {
		return nil, settingError{"cache-dir", err}
	}
	secret, err := cat.ClusterSecret(ctx)
	if err != nil {
		return nil, settingError{"catalog-url", err}
	}
	n := &cacheNode{node: &cache.Node{Store: store, Bucket: bucket, Catalog: cat, M: m, Secret: secret}, addr: advertised(ln, c.advertise)}
	catalog.Announce(ctx, cat, catalog.Node{ID: "cache-" + n.addr, Role: cache.Role, Address: n.addr, StartedAt: time.Now()}, heartbeatEvery)
	return n, nil
}

func registerAdvertise(cmd *command, host *string) {
	cmd.fs.StringVar(host, "advertise-host", "", "`host` other nodes reach this one at, announced in the catalog with each listener's port (default: the listen address, or the host name when listening on all interfaces)")
}

// advertised is the address other nodes reach ln at: host (if set) with
// ln's port; ln's own address, unless it listens on every interface, where
// the host name stands in.
func advertised(ln net.Listener, host string) string {
	addr := ln.Addr().(*net.TCPAddr)
	port := strconv.Itoa(addr.Port)
	if host != "" {
		return net.JoinHostPort(host, port)
	}
	if addr.IP.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			return net.JoinHostPort(name, port)
		}
	}
	return addr.String()
}

// newCacheClient returns how a query or ingest role reaches the cache
// tier: the ring of --cache-nodes and the nodes announced in the catalog,
// with self (may be nil) as the in-process node.
func newCacheClient(ctx context.Context, c cacheConfig, cat catalog.Store, bucket *objstore.Bucket, self *cacheNode, reg *prometheus.Registry) (*cache.Client, error) {
	if c.dir == "" { // roles without a cache dir; resolveDir checked the others'
		if err := c.check(); err != nil {
			return nil, err
		}
	}
	secret, err := cat.ClusterSecret(ctx)
	if err != nil {
		return nil, settingError{"catalog-url", err}
	}
	ring := cache.NewRing(c.staticNodes()...)
	opts := cache.ClientOptions{Ring: ring, Metrics: cache.NewCopyMetrics(), Secret: secret}
	if c.dir != "" { // roles that read files (not ingest, which only warms)
		opts.TransientDir = filepath.Join(c.dir, "transient")
	}
	if self != nil {
		opts.Self, opts.Node, opts.Metrics = self.addr, self.node, self.node.M
		ring.Set(append(c.staticNodes(), self.addr))
	} else {
		reg.MustRegister(opts.Metrics.Collectors()...)
	}
	if c.localSize > 0 {
		if err := apartFromObjects(c.dir, bucket); err != nil {
			return nil, err
		}
		m := opts.Metrics
		if self != nil { // the node's metrics are its own store's
			m = cache.NewCopyMetrics()
			reg.MustRegister(m.Collectors()...)
		}
		local, err := cache.OpenStore(filepath.Join(c.dir, "copies"), int64(c.localSize), m)
		if err != nil {
			return nil, settingError{"cache-dir", err}
		}
		opts.Local = local
	}
	if _, local := bucket.LocalDir(); !local {
		ring.Watch(ctx, cat, ring.Members(), heartbeatEvery, nodeTTL)
	}
	client, err := cache.NewClient(bucket, opts)
	if err != nil {
		return nil, settingError{"cache-dir", err}
	}
	return client, nil
}

// warmer asks the cache tier to fetch freshly flushed files, so the first
// dashboard query after a flush reads them from SSD.
func warmer(files *cache.Client) func([]catalog.File) {
	return func(fs []catalog.File) {
		for _, f := range fs {
			files.Warm(context.Background(), f.Project, f.Key, f.Bytes)
		}
	}
}

// adminMux serves the health and readiness checks, the Prometheus metrics
// of reg and Go's profiles (for finding where time and memory go under
// load), for every role. ready says what the role's readiness needs.
// shared says the address also serves other nodes (a cache node's): its
// profiles then answer only on loopback, since they show the process's
// insides and a CPU profile costs a core while it runs.
func adminMux(reg *prometheus.Registry, ready *readiness, shared bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /readyz", ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	profiles := func(h http.HandlerFunc) http.HandlerFunc {
		if !shared {
			return h
		}
		return func(w http.ResponseWriter, r *http.Request) {
			if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || !net.ParseIP(host).IsLoopback() {
				http.Error(w, "profiles answer only on loopback on a cache node's address", http.StatusForbidden)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("/debug/pprof/", profiles(pprof.Index))
	mux.HandleFunc("/debug/pprof/profile", profiles(pprof.Profile))
	return mux
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), anonMemory, buildInfo())
	return reg
}

const cacheAbout = `Runs a cache node: keeps the Parquet files that query nodes read on local
SSD, at most --cache-size of them (least recently used evicted), filled from
the object store on a miss (one fetch however many readers wait). Query
nodes find each file's owner on a consistent-hash ring of the cache nodes
announced in the catalog, so each file is cached once per cluster.

  GET  /objects/{key}   the object, with HTTP ranges; header Strata-Project
                        must name the key's project, and the catalog must
                        know the file
  POST /warm            {"project","key"}: fetch now, before a query asks
  GET  /healthz, /readyz, /metrics

The index is rebuilt from the files on disk at start.`

func runCache(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("cache", "", cacheAbout)
	var st storage
	st.register(c)
	var cc cacheConfig
	cc.registerNode(c)
	cc.registerDir(c)
	lns, cat, bucket, err := boot(ctx, c, &st, args, stdout, func() map[string]string {
		return map[string]string{"cache-addr": cc.addr}
	}, cc.resolveDir)
	if err != nil {
		return err
	}
	defer cat.Close()
	defer closeBucket(bucket)
	reg := newRegistry()
	node, err := startCacheNode(ctx, cc, lns["cache-addr"], cat, bucket, reg)
	if err != nil {
		return err
	}
	srv := serveHTTP("cache", lns["cache-addr"], node.node.Handler(adminMux(reg, &readiness{cat: cat, bucket: bucket}, true)))
	slog.Info("cache node listening", "addr", srv.addr, "dir", cc.dir, "size", fmt.Sprint(cc.size), "objects", bucket.String())
	<-ctx.Done()
	srv.srv.Shutdown(context.Background())
	slog.Info("stopped")
	return nil
}

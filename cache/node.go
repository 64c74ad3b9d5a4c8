package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/objstore"
)

// ProjectHeader names the project a request reads for; a cache node serves
// only objects of that project.
const ProjectHeader = "Strata-Project"

// HitHeader says whether the node had the object ("hit") or fetched it
// from the object store ("miss").
const HitHeader = "Strata-Cache"

// fillTimeout bounds one fill. A fill is shared by every reader waiting for
// the key, so it does not stop when the reader that started it goes away.
const fillTimeout = 10 * time.Minute

// Node is a cache node: a Store filled from the object store, with sizes
// and project ownership checked against the catalog.
type Node struct {
	Store   *Store
	Bucket  *objstore.Bucket
	Catalog catalog.Store
	M       *Metrics
	// Secret checks the query context of HTTP requests (ContextHeader);
	// without it the node serves only its own process.
	Secret []byte
}

// Get returns key's local path, pinned until release, filling it from the
// object store on a miss.
func (n *Node) Get(ctx context.Context, key string, size int64) (path string, release func(), hit bool, err error) {
	return n.Store.Get(ctx, key, size, bucketFill(n.Bucket, key, size))
}

// bucketFill copies an object of size bytes from the bucket. A large
// object is fetched as several ranges at once: on a remote store a cold
// query waits on round trips and on one connection's bandwidth, and
// parallel ranges cut both.
func bucketFill(b *objstore.Bucket, key string, size int64) Fill {
	return func(ctx context.Context, f *os.File) (int64, error) {
		if size < 2*fillPart {
			r, err := b.NewReader(ctx, key, nil)
			if err != nil {
				return 0, err
			}
			defer r.Close()
			if err := checkSize(r.Size(), size); err != nil {
				return 0, err
			}
			// Never more than the catalog's size: the store reserved that
			// much and no more.
			return io.Copy(f, io.LimitReader(r, size+1))
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(fillParallel)
		for off := int64(0); off < size; off += fillPart {
			n := min(fillPart, size-off)
			g.Go(func() error {
				r, err := b.NewRangeReader(gctx, key, off, n, nil)
				if err != nil {
					return err
				}
				defer r.Close()
				if err := checkSize(r.Size(), size); err != nil {
					return err
				}
				got, err := io.Copy(io.NewOffsetWriter(f, off), r)
				if err == nil && got != n {
					err = fmt.Errorf("range at %d: got %d bytes, want %d", off, got, n)
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return 0, err
		}
		if _, err := f.Seek(size, io.SeekStart); err != nil {
			return 0, err
		}
		return size, nil
	}
}

// Ranges of a large object fetched at once, and their size; objects
// under two parts come in one GET. On this project's 2-core test machine,
// with the S3 server on loopback, 4 ranges of 8 MiB made 32 MB fetches
// slower (cold last-hour queries 104 → 113 ms, a 24 h scan of 16 such
// files 531 → 758 ms: bandwidth there is CPU, not the connection), so
// only large compacted files are split; a real object store's
// per-connection bandwidth is what parallel ranges are for.
const (
	fillParallel = 4
	fillPart     = 32 << 20
)

// Handler serves GET /objects/{key} (with HTTP ranges) and POST /warm,
// passing every other request to next. It reads the raw request path
// itself: a ServeMux would clean "/objects/../x" into a redirect instead
// of refusing it.
func (n *Node) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.EscapedPath(), "/objects/"):
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				httpError(w, http.StatusMethodNotAllowed, "use GET")
				return
			}
			n.serveObject(w, r)
		case r.URL.Path == "/warm":
			if r.Method != http.MethodPost {
				httpError(w, http.StatusMethodNotAllowed, "use POST")
				return
			}
			n.serveWarm(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// catalogTimeout bounds a node's lookup of an object in the catalog. A
// variable for tests.
var catalogTimeout = 5 * time.Second

// file checks that key is a plain data key of project that the catalog
// knows and that the request's query context (signed) is for it, and
// returns its catalog row; status is the HTTP code of a refusal.
func (n *Node) file(ctx context.Context, project, key, signed string) (catalog.File, int, error) {
	if err := CheckKey(key); err != nil {
		return catalog.File{}, http.StatusBadRequest, err
	}
	parts, err := objstore.ParseDataKey(key)
	if err != nil {
		return catalog.File{}, http.StatusBadRequest, err
	}
	if project == "" {
		return catalog.File{}, http.StatusForbidden, errors.New("no " + ProjectHeader + " header: objects are served for a project's query")
	}
	if parts.Project != project {
		return catalog.File{}, http.StatusForbidden, errors.New("object belongs to another project")
	}
	if err := CheckContext(n.Secret, signed, project, key, time.Now()); err != nil {
		return catalog.File{}, http.StatusForbidden, err
	}
	// A catalog that does not answer makes this node answer 503 soon, which
	// its clients take as the node being unwell. A lookup that failed
	// otherwise (a connection reset) is a 502, about this object: one blip
	// of the catalog must not send every query node to the object store
	// for everything this node owns.
	cctx, cancel := context.WithTimeout(ctx, catalogTimeout)
	defer cancel()
	f, err := n.Catalog.File(cctx, key)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return catalog.File{}, http.StatusNotFound, errors.New("no such file in the catalog")
	case err != nil && cctx.Err() != nil && ctx.Err() == nil:
		return catalog.File{}, http.StatusServiceUnavailable, fmt.Errorf("the catalog did not answer within %v: %w", catalogTimeout, err)
	case err != nil:
		return catalog.File{}, http.StatusBadGateway, fmt.Errorf("catalog lookup: %w", err)
	}
	return f, 0, nil
}

func (n *Node) serveObject(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/objects/")
	if lower := strings.ToLower(raw); strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%2e") {
		httpError(w, http.StatusBadRequest, "encoded '/', '\\' or '.' in object key")
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/objects/")
	f, status, err := n.file(r.Context(), r.Header.Get(ProjectHeader), key, r.Header.Get(ContextHeader))
	if err != nil {
		httpError(w, status, err.Error())
		return
	}
	path, release, hit, err := n.Get(r.Context(), key, f.Bytes)
	if errors.Is(err, ErrFull) {
		n.passThrough(w, r, key, f.Bytes)
		return
	}
	if err != nil {
		httpError(w, http.StatusBadGateway, err.Error())
		return
	}
	defer release()
	file, err := os.Open(path)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer file.Close()
	n.serve(w, r, hit, file)
}

// serve sends an object's bytes, ranges included, and counts them.
func (n *Node) serve(w http.ResponseWriter, r *http.Request, hit bool, content io.ReadSeeker) {
	w.Header().Set(HitHeader, map[bool]string{true: "hit", false: "miss"}[hit])
	w.Header().Set("Content-Type", "application/vnd.apache.parquet")
	// With If-Range (no validator here can match it) ServeContent ignores
	// Range and sends the whole object; If-Match and If-None-Match come
	// before Range (412, 304).
	conditional := r.Header.Get("If-Range") != "" || r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != ""
	if rng, ok := withoutEmptySuffixes(r.Header.Get("Range")); !ok && !conditional {
		// A zero-length suffix is unsatisfiable (RFC 9110); Go's
		// ServeContent answers it 206 with an invalid Content-Range.
		size, _ := content.Seek(0, io.SeekEnd)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		httpError(w, http.StatusRequestedRangeNotSatisfiable, "the range asks for no bytes (a suffix of 0)")
		return
	} else if ok && rng != r.Header.Get("Range") {
		r.Header.Set("Range", rng)
	}
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, content)
	n.M.served.Add(float64(cw.n))
}

// withoutEmptySuffixes drops the zero-length suffix ranges (-0, -+0, - 0…)
// from a Range header, read as Go's ServeContent reads it, which would
// answer them with an empty, invalid part; ok is false when nothing else
// is left. Other headers are returned as they are, for ServeContent to
// judge.
func withoutEmptySuffixes(header string) (string, bool) {
	const prefix = "bytes="
	if !strings.HasPrefix(header, prefix) {
		return header, true
	}
	var kept []string
	for _, spec := range strings.Split(header[len(prefix):], ",") {
		start, end, found := strings.Cut(textproto.TrimString(spec), "-")
		end = textproto.TrimString(end)
		if found && textproto.TrimString(start) == "" && end != "" && end[0] != '-' {
			if n, err := strconv.ParseInt(end, 10, 64); err == nil && n == 0 {
				continue
			}
		}
		kept = append(kept, spec)
	}
	if len(kept) == 0 {
		return "", false
	}
	return prefix + strings.Join(kept, ","), true
}

// checkSize refuses an object whose size is not the catalog's.
func checkSize(got, want int64) error {
	if got != want {
		return fmt.Errorf("object is %d bytes, the catalog says %d", got, want)
	}
	return nil
}

// passThrough serves an object the store has no room for straight from
// the object store, ranges included (each a ranged read of the store).
func (n *Node) passThrough(w http.ResponseWriter, r *http.Request, key string, size int64) {
	rd, err := n.Bucket.NewReader(r.Context(), key, nil)
	if err != nil {
		httpError(w, http.StatusBadGateway, err.Error())
		return
	}
	defer rd.Close()
	if err := checkSize(rd.Size(), size); err != nil {
		httpError(w, http.StatusBadGateway, err.Error())
		return
	}
	n.serve(w, r, false, rd)
}

// WarmRequest asks a node to fetch an object before anyone reads it.
type WarmRequest struct {
	Project string `json:"project"`
	Key     string `json:"key"`
}

func (n *Node) serveWarm(w http.ResponseWriter, r *http.Request) {
	var req WarmRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	f, status, err := n.file(r.Context(), req.Project, req.Key, r.Header.Get(ContextHeader))
	if err != nil {
		httpError(w, status, err.Error())
		return
	}
	go n.Warm(f.Key, f.Bytes)
	w.WriteHeader(http.StatusAccepted)
}

// Warm fetches an object into the store if it is not there, in the
// background of the caller's request.
func (n *Node) Warm(key string, size int64) {
	ctx, cancel := context.WithTimeout(context.Background(), fillTimeout)
	defer cancel()
	_, release, _, err := n.Get(ctx, key, size)
	if err != nil {
		slog.Warn("cache warm failed", "key", key, "err", err)
		return
	}
	release()
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/objstore"
)

// readiness answers GET /readyz: whether the catalog and the object store
// answer, each within readyTimeout, and whether ingest accepts requests,
// as JSON. It answers 503 only when what the role cannot work without
// fails (need): a query node without its catalog, an ingest node whose
// WAL or memory is full. A check it can work without that fails makes it
// "degraded", still 200: an ingest node buffers in its WAL through a
// catalog or object store outage, and a load balancer that took every
// node out then would turn an outage strata rides out into a total one.
// /healthz only says the process serves (a liveness probe that restarted
// nodes whenever the catalog blinked would make an outage worse). An
// answer is reused for a second, so many probers cost one check.
type readiness struct {
	cat    catalog.Store
	bucket *objstore.Bucket
	// accepting, if set, is ingest's: why it refuses requests, or nil.
	accepting func() error
	// flushing, if set, is ingest's: why its flushes are failing, or nil.
	flushing func() error
	need     map[string]bool // checks whose failure is a 503

	mu     sync.Mutex
	at     time.Time
	status int
	body   []byte
}

const readyTimeout = 2 * time.Second

type readyCheck struct {
	Status string `json:"status"` // ok or failing
	Error  string `json:"error,omitempty"`
	Millis int64  `json:"ms"`
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rd.mu.Lock()
	if time.Since(rd.at) > time.Second {
		rd.status, rd.body = rd.check(context.WithoutCancel(r.Context())) // a prober that hangs up does not fail it
		rd.at = time.Now()
	}
	status, body := rd.status, rd.body
	rd.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func (rd *readiness) check(ctx context.Context) (int, []byte) {
	checks := map[string]func(context.Context) error{
		"catalog": func(ctx context.Context) error {
			_, err := rd.cat.Project(ctx, catalog.DefaultProject)
			if errors.Is(err, catalog.ErrNotFound) {
				return nil // it answered
			}
			return err
		},
		"object_store": rd.bucket.Reachable,
	}
	if rd.accepting != nil {
		checks["ingest"] = func(context.Context) error { return rd.accepting() }
	}
	if rd.flushing != nil {
		checks["flush"] = func(context.Context) error { return rd.flushing() }
	}
	out := struct {
		Status string                `json:"status"` // ok, degraded or failing
		Checks map[string]readyCheck `json:"checks"`
	}{Status: "ok", Checks: map[string]readyCheck{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, fn := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, readyTimeout)
			defer cancel()
			start := time.Now()
			c := readyCheck{Status: "ok"}
			if err := fn(cctx); err != nil {
				c = readyCheck{Status: "failing", Error: err.Error()}
			}
			c.Millis = time.Since(start).Milliseconds()
			mu.Lock()
			out.Checks[name] = c
			switch {
			case c.Status == "ok":
			case rd.need[name]:
				out.Status = "failing"
			case out.Status == "ok":
				out.Status = "degraded"
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	body, _ := json.Marshal(out)
	if out.Status == "failing" {
		return http.StatusServiceUnavailable, append(body, '\n')
	}
	return http.StatusOK, append(body, '\n')
}

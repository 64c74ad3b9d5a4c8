package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/internal/faultproxy"
	"github.com/strata-db/strata/internal/otlptest"
	"github.com/strata-db/strata/internal/testenv"
)

// /readyz says which of the catalog and the object store fail to answer.
// strata serve rides them out in its WAL: it stays ready ("degraded", 200)
// until ingest refuses requests (its WAL full), then 503; it recovers with
// them. /healthz (liveness) stays ok throughout.
func TestServe_ReadyzFollowsCatalogAndObjectStore(t *testing.T) {
	pgURL, pg := faultproxy.Via(t, testenv.PostgresURL(t), false)
	schema := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	s3URL, s3 := faultproxy.Via(t, testenv.S3URL(t), true)
	n := launch(t, roleArgs(t, []string{"STRATA_DATA_DIR=" + t.TempDir(),
		"STRATA_CATALOG_URL=" + pgURL, "STRATA_CATALOG_SCHEMA=" + schema, "STRATA_OBJECT_STORE_URL=" + s3URL},
		"serve", "--no-compactor", "--max-scratch-bytes", "2MiB", "--flush-bytes", "1MiB"))
	t.Cleanup(func() { pg.Set(faultproxy.Pass); s3.Set(faultproxy.Pass) }) // runs before the kill
	addr := n.admin

	type answer struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Status, Error string
		} `json:"checks"`
	}
	// ready polls /readyz until it answers want (the answer is reused for
	// a second) and returns the last answer.
	ready := func(want int) answer {
		t.Helper()
		var a answer
		code := 0
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			a = answer{}
			json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			if code = resp.StatusCode; code == want {
				return a
			}
		}
		t.Fatalf("/readyz answered %d, want %d: %+v", code, want, a)
		return a
	}
	healthy := func() {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz: %d", resp.StatusCode)
		}
	}

	if a := ready(http.StatusOK); a.Status != "ok" || a.Checks["catalog"].Status != "ok" || a.Checks["object_store"].Status != "ok" || a.Checks["ingest"].Status != "ok" {
		t.Errorf("everything up: %+v", a)
	}
	pg.Set(faultproxy.Refuse)
	for a := ready(http.StatusOK); a.Status != "degraded"; a = ready(http.StatusOK) {
		time.Sleep(200 * time.Millisecond) // the answer of a second ago
	}
	if a := ready(http.StatusOK); a.Checks["catalog"].Status != "failing" || a.Checks["catalog"].Error == "" || a.Checks["object_store"].Status != "ok" {
		t.Errorf("catalog down: %+v", a)
	}
	healthy()
	pg.Set(faultproxy.Pass)
	for a := ready(http.StatusOK); a.Status != "ok"; a = ready(http.StatusOK) {
		time.Sleep(200 * time.Millisecond)
	}
	s3.Set(faultproxy.Hang)
	for a := ready(http.StatusOK); a.Status != "degraded"; a = ready(http.StatusOK) {
		time.Sleep(200 * time.Millisecond)
	}
	if a := ready(http.StatusOK); a.Checks["object_store"].Status != "failing" || a.Checks["catalog"].Status != "ok" {
		t.Errorf("object store hung: %+v", a)
	}
	// Nothing is flushed: once the WAL holds more than its limit, ingest
	// refuses requests, and the node is not ready.
	sender := otlptest.NewSender("readyz")
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, err := sender.Send(context.Background(), http.DefaultClient, n.otlpHTTP, 500)
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusTooManyRequests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL never filled: %d", code)
		}
	}
	if a := ready(http.StatusServiceUnavailable); a.Status != "failing" || !strings.Contains(a.Checks["ingest"].Error, "max-scratch-bytes") {
		t.Errorf("WAL full: %+v", a)
	}
	// An upload attempt gives up after 30 s; from then on, flushes are
	// said to be failing.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		a := ready(http.StatusServiceUnavailable)
		if strings.Contains(a.Checks["flush"].Error, "flushes are failing") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flushes not said to fail after 2 min of a hung object store: %+v", a)
		}
	}
	healthy()
	s3.Set(faultproxy.Pass)
	ready(http.StatusOK)
	// Once the flushes get through, nothing is degraded.
	for a := ready(http.StatusOK); a.Status != "ok"; a = ready(http.StatusOK) {
		time.Sleep(200 * time.Millisecond)
	}
}

// A file:// object store whose directory went away is seen failing, though
// listing it (what IsAccessible does) finds it empty and fine.
func TestServe_ReadyzSeesALocalObjectStoreGone(t *testing.T) {
	dir := t.TempDir()
	addr := launch(t, roleArgs(t, nil, "serve", "--no-compactor", "--data-dir", dir)).admin
	code := func() int {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := code(); c != http.StatusOK {
		t.Fatalf("/readyz with the objects in place: %d", c)
	}
	if err := os.Rename(filepath.Join(dir, "objects"), filepath.Join(dir, "objects.moved")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the reused answer
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Status string
		Checks map[string]struct{ Status string }
	}
	json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	if a.Status != "degraded" || a.Checks["object_store"].Status != "failing" {
		t.Errorf("/readyz with the objects directory gone: %d %+v", resp.StatusCode, a)
	}
}

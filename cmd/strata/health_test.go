package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-db/strata/internal/faultproxy"
	"github.com/strata-db/strata/internal/testenv"
)

// /readyz says which of the catalog and the object store fail to answer,
// with 503, and recovers with them; /healthz (liveness) stays ok.
func TestServe_ReadyzFollowsCatalogAndObjectStore(t *testing.T) {
	pgURL, pg := faultproxy.Via(t, testenv.PostgresURL(t), false)
	schema := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	s3URL, s3 := faultproxy.Via(t, testenv.S3URL(t), true)
	n := launch(t, roleArgs(t, []string{"STRATA_DATA_DIR=" + t.TempDir(),
		"STRATA_CATALOG_URL=" + pgURL, "STRATA_CATALOG_SCHEMA=" + schema, "STRATA_OBJECT_STORE_URL=" + s3URL},
		"serve", "--no-compactor"))
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
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
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

	if a := ready(http.StatusOK); a.Status != "ok" || a.Checks["catalog"].Status != "ok" || a.Checks["object_store"].Status != "ok" {
		t.Errorf("everything up: %+v", a)
	}
	pg.Set(faultproxy.Refuse)
	if a := ready(http.StatusServiceUnavailable); a.Checks["catalog"].Status != "failing" || a.Checks["catalog"].Error == "" || a.Checks["object_store"].Status != "ok" {
		t.Errorf("catalog down: %+v", a)
	}
	healthy()
	pg.Set(faultproxy.Pass)
	ready(http.StatusOK)
	s3.Set(faultproxy.Hang)
	if a := ready(http.StatusServiceUnavailable); a.Checks["object_store"].Status != "failing" || a.Checks["catalog"].Status != "ok" {
		t.Errorf("object store hung: %+v", a)
	}
	healthy()
	s3.Set(faultproxy.Pass)
	ready(http.StatusOK)
}

// A file:// object store whose directory went away is not ready, though
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
	if c := code(); c != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the objects directory gone: %d", c)
	}
}

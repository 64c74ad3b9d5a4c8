package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A cache node's address serves other nodes, so its profiles answer only
// on loopback; its health and metrics, and every other role's profiles
// (on an admin address of their own), answer anyone.
func TestAdminMux_ProfilesOnASharedAddressAreLoopbackOnly(t *testing.T) {
	for _, c := range []struct {
		shared bool
		from   string
		path   string
		want   int
	}{
		{true, "10.0.0.2:4000", "/debug/pprof/", http.StatusForbidden},
		{true, "10.0.0.2:4000", "/debug/pprof/profile?seconds=1", http.StatusForbidden},
		{true, "127.0.0.1:4000", "/debug/pprof/", http.StatusOK},
		{true, "[::1]:4000", "/debug/pprof/", http.StatusOK},
		{true, "10.0.0.2:4000", "/metrics", http.StatusOK},
		{true, "10.0.0.2:4000", "/healthz", http.StatusOK},
		{false, "10.0.0.2:4000", "/debug/pprof/", http.StatusOK},
	} {
		mux := adminMux(newRegistry(), &readiness{}, c.shared)
		req := httptest.NewRequest("GET", c.path, nil)
		req.RemoteAddr = c.from
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("shared %v, %s from %s: %d, want %d", c.shared, c.path, c.from, rec.Code, c.want)
		}
	}
}

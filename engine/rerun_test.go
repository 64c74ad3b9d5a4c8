package engine

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// A query too big for the memory limit on its own runs again once at
// most (its failure may have come as another query ended), not until its
// time limit: with nobody else holding memory, waiting frees nothing.
func TestQuery_TooBigOnItsOwnRunsAgainOnceAtMost(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(context.Background(), Options{AllowedDirs: []string{dir}, TempDir: filepath.Join(dir, "spill"),
		MemoryLimit: "64MB", MaxTempSize: "1MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.memLimit < 60<<20 || db.memLimit > 64<<20 {
		t.Fatalf("memory limit read as %d bytes, want about 64 MB", db.memLimit)
	}
	var reruns atomic.Int64
	rerunHook = func() { reruns.Add(1) }
	defer func() { rerunHook = nil }()
	rows, err := db.Query(context.Background(), Query{SQL: "SELECT list(i::VARCHAR || repeat('x', 100)) FROM range(10000000) t(i)"})
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Release()
	}
	if err == nil || !strings.Contains(err.Error(), "Out of Memory") {
		t.Fatalf("err = %v, want out of memory", err)
	}
	if n := reruns.Load(); n > 1 {
		t.Fatalf("a query too big on its own ran again %d times", n)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"61.0 MiB": 61 << 20, "1.5 GiB": 3 << 29, "512 bytes": 512, "1 byte": 1, "2.0 PiB": 2 << 50} {
		if got, ok := parseSize(in); !ok || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "61.0", "x MiB", "61.0 parsecs", "2.0 GB"} {
		if _, ok := parseSize(bad); ok {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

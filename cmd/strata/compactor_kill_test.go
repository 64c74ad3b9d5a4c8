package main_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/catalog"
)

// lakeFingerprint is the row count and an order-independent hash of every
// live row of records, through a strata serve that does not compact.
func lakeFingerprint(t *testing.T, dir string) string {
	t.Helper()
	n := startNode(t, dir, "--no-compactor")
	defer n.kill()
	rows := n.query(t, "SELECT count(*), count(DISTINCT span_id || trace_id || kind), bit_xor(hash(trace_id, span_id, start_timestamp, attributes::VARCHAR)) FROM records")
	return fmt.Sprint(rows[0]...)
}

// A compactor process killed with SIGKILL at random moments — while it
// downloads, merges, uploads, swaps, collects garbage — never loses or
// doubles a row, and the compactor that comes after it finishes the work
// and deletes what the dead one left behind.
func TestCompactor_SIGKILLAtRandomMoments(t *testing.T) {
	kills := 15
	if v := os.Getenv("STRATA_COMPACTOR_KILLS"); v != "" {
		fmt.Sscan(v, &kills)
	}
	// Each compactor finds new level-0 files to merge: a load of its own
	// (a different seed each time), so every kill lands amid work. The same
	// loads into a lake no compactor touches give the rows to expect.
	dir, ref := t.TempDir(), t.TempDir()
	end := time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339)
	load := func(into string, seed int) {
		t.Helper()
		if out, stderr, code := strata(t, nil, "bench", "load", "--data-dir", into, "--spans", "3000", "--hours", "3", "--end", end,
			"--seed", fmt.Sprint(seed+1), "--file-rows", "100", "--logs-per-span", "0.2", "--metrics-per-service", "0"); code != 0 {
			t.Fatalf("bench load: %d\n%s%s", code, out, stderr)
		}
	}
	compact := []string{"compactor", "--data-dir", dir, "--compact-interval", "50ms", "--compact-min-age", "0",
		"--compact-lease-ttl", "1s", "--gc-grace", "1ms", "--gc-orphan-grace", "1ms"}
	loaded := 0
	for i := range kills {
		load(dir, i)
		loaded += len(liveFiles(t, dir))
		admin := freeAddr(t)
		cmd := exec.Command(strataBin, append(compact, "--http-addr", admin)...)
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rand.IntN(900)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if i == 0 && stderr.Len() > 0 && !strings.Contains(stderr.String(), "level=") {
			t.Logf("compactor stderr: %s", stderr.String())
		}
	}
	// A last compactor, left to finish: it waits out the dead ones' leases,
	// merges what is left and collects every object no live file refers to.
	n := startRole(t, "compactor", dir, compact[3:]...)
	deadline := time.Now().Add(60 * time.Second)
	afterKills := len(liveFiles(t, dir))
	for polls := 1; ; polls++ {
		time.Sleep(500 * time.Millisecond)
		if backlog := n.metric(t, "strata_compactor_backlog_partitions"); backlog == 0 && polls >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("compaction did not settle in 60s\n%s", n.stderr.String())
		}
	}
	time.Sleep(time.Second) // one more pass: garbage collection after the last swap
	n.cmd.Process.Signal(syscall.SIGTERM)
	n.wait()

	for i := range kills {
		load(ref, i)
	}
	if want, got := lakeFingerprint(t, ref), lakeFingerprint(t, dir); got != want {
		t.Fatalf("rows changed: want %s, got %s", want, got)
	}
	// No orphan: every object is a live file of the catalog.
	live := liveFiles(t, dir)
	objects := 0
	filepath.Walk(filepath.Join(dir, "objects"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".parquet") {
			return err
		}
		objects++
		if key, _ := filepath.Rel(filepath.Join(dir, "objects"), p); !live[key] {
			t.Errorf("orphan object %s", key)
		}
		return nil
	})
	if objects != len(live) {
		t.Errorf("%d objects for %d live files", objects, len(live))
	}
	t.Logf("%d kills, each amid the merge of a fresh load: %d live files seen by them in all, %d after the kills, %d at the end",
		kills, loaded, afterKills, len(live))
}

// liveFiles is the set of live file keys in the catalog of dir.
func liveFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	cat, err := catalog.Open(context.Background(), filepath.Join(dir, "catalog.db"), catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	live := map[string]bool{}
	for _, table := range []string{"records", "metrics"} {
		files, err := cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			live[f.Key] = true
		}
	}
	return live
}

package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/internal/faultproxy"
	"github.com/strata-db/strata/internal/otlptest"
	"github.com/strata-db/strata/internal/testenv"
)

// node is one strata serve process with its addresses.
type node struct {
	cmd                       *exec.Cmd
	done                      chan struct{} // closed when the process has exited
	err                       error         // its exit, once done
	admin, otlpHTTP, queryURL string
	stderr                    *bytes.Buffer
}

// startNode starts strata serve on fresh loopback ports.
func startNode(t *testing.T, dataDir string, extra ...string) *node {
	t.Helper()
	return startRole(t, "serve", dataDir, extra...)
}

// startRole starts strata serve, ingest, query or compactor on fresh
// loopback ports.
func startRole(t *testing.T, role, dataDir string, extra ...string) *node {
	t.Helper()
	return launch(t, roleArgs(t, nil, role, append([]string{"--data-dir", dataDir}, extra...)...))
}

// roleArgs gives the arguments that run role on fresh loopback ports, with
// env added to a clean environment, and notes the node's addresses.
func roleArgs(t *testing.T, env []string, role string, extra ...string) func(n *node) (args, env []string) {
	return func(n *node) ([]string, []string) {
		n.otlpHTTP, n.queryURL = "http://"+freeAddr(t), "http://"+freeAddr(t)
		args := []string{role, "--http-addr", n.admin}
		if role == "serve" || role == "ingest" {
			args = append(args, "--otlp-http-addr", strings.TrimPrefix(n.otlpHTTP, "http://"), "--otlp-grpc-addr", freeAddr(t))
		}
		if role == "serve" || role == "query" {
			args = append(args, "--query-addr", strings.TrimPrefix(n.queryURL, "http://"), "--pg-addr", freeAddr(t))
		}
		if role == "serve" {
			args = append(args, "--cache-addr", freeAddr(t))
		}
		return append(args, extra...), env
	}
}

// launch runs strata with the arguments and environment (added to a clean
// one) that setup gives for a node whose admin address is already picked,
// and waits until /healthz answers. The process is killed when the test ends.
// A port picked free can be taken by another process before strata binds
// it; then strata exits with "address already in use" and launch tries
// other ports.
func launch(t *testing.T, setup func(n *node) (args, env []string)) *node {
	t.Helper()
	for attempt := 0; ; attempt++ {
		n := &node{admin: freeAddr(t), stderr: &bytes.Buffer{}}
		args, env := setup(n)
		n.cmd = exec.Command(strataBin, args...)
		n.cmd.Env = append(cleanEnv(), env...)
		n.cmd.Stderr = n.stderr
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		n.done = make(chan struct{})
		go func() { n.err = n.cmd.Wait(); close(n.done) }()
		t.Cleanup(n.kill) // no process outlives its test
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-n.done:
				if strings.Contains(n.stderr.String(), "address already in use") && attempt < 5 {
					goto retry
				}
				t.Fatalf("strata exited before becoming healthy: %v\n%s", n.err, n.stderr.String())
			default:
			}
			if resp, err := http.Get("http://" + n.admin + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return n
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("strata did not answer /healthz within 30s\n%s", n.stderr.String())
	retry:
	}
}

// kill stops the process with SIGKILL (if it still runs) and waits for it.
func (n *node) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// wait waits for the process to exit and returns how it did.
func (n *node) wait() error {
	<-n.done
	return n.err
}

// metric reads one value from the node's /metrics.
func (n *node) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if strings.HasPrefix(sc.Text(), name+" ") {
			fmt.Sscan(strings.TrimPrefix(sc.Text(), name+" "), &v)
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// waitDrained waits until nothing is buffered: every acknowledged row is in
// the catalog.
func (n *node) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if n.metric(t, "strata_ingest_unflushed_rows") == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("buffers did not drain within 60s")
}

func (n *node) query(t *testing.T, sql string) [][]any {
	t.Helper()
	return n.answer(t, sql).Rows
}

// queryAnswer is what the HTTP query API answers.
type queryAnswer struct {
	Rows  [][]any
	Error string
	Stats struct {
		IngestNodesMissing int `json:"ingest_nodes_missing"`
	}
}

func (n *node) answer(t *testing.T, sql string) queryAnswer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"sql": sql})
	resp, err := http.Post(n.queryURL+"/v1/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out queryAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("query %s: status %d, %v %s", sql, resp.StatusCode, err, out.Error)
	}
	return out
}

func TestCrash_SIGKILLLosesNothingAcknowledged(t *testing.T) {
	kills := 20
	if v := os.Getenv("STRATA_CRASH_KILLS"); v != "" {
		fmt.Sscan(v, &kills)
	}
	dataDir := t.TempDir()
	s := otlptest.NewSender("crash-test")
	for i := range kills {
		n := startNode(t, dataDir, "--flush-interval", "200ms")
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); s.Run(ctx, n.otlpHTTP, 50) }()
		}
		time.Sleep(time.Duration(150+rand.IntN(900)) * time.Millisecond)
		n.kill() // mid-write, mid-flush, wherever it is
		cancel()
		wg.Wait()
		if i == 0 && len(s.Acked()) == 0 {
			t.Fatalf("nothing acknowledged in the first run:\n%s", n.stderr.String())
		}
	}
	n := startNode(t, dataDir)
	defer n.kill()
	n.waitDrained(t)
	dups := n.query(t, `SELECT span_id, count(*) FROM records GROUP BY span_id HAVING count(*) > 1 LIMIT 10`)
	if len(dups) > 0 {
		t.Errorf("spans stored more than once: %v", dups)
	}
	stored := map[string]int{}
	for _, r := range n.query(t, `SELECT span_id FROM records`) {
		stored[r[0].(string)]++
	}
	if got := n.metric(t, "strata_query_result_rows_total"); got != float64(len(stored)+len(dups)) {
		t.Errorf("strata_query_result_rows_total %v after queries returning %d rows", got, len(stored)+len(dups))
	}
	lost := s.Missing(stored)
	t.Logf("%d kills: %d spans answered, %d acknowledged, %d stored", kills, s.Sent(), len(s.Acked()), len(stored))
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged spans lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
}

func TestServe_SIGTERMUnderLoadFlushesEverythingAcknowledged(t *testing.T) {
	dataDir := t.TempDir()
	s := otlptest.NewSender("sigterm")
	n := startNode(t, dataDir)
	terminateUnderLoad(t, n, s, 4, nil)
	// A clean stop flushes everything it can within --shutdown-timeout (1 s);
	// on a machine loaded by other tests what is left stays in the WAL and
	// the restart below must find it. Either way nothing is lost.
	segs, _ := filepath.Glob(filepath.Join(dataDir, "scratch", "*.wal"))
	if len(segs) > 0 {
		t.Logf("%d WAL segments left for the restart (the 1 s shutdown budget ran out):\n%s", len(segs), n.stderr.String())
	}
	storedAll(t, startNode(t, dataDir), s)
}

// SIGTERM while the object store hangs: nothing can be flushed, so the
// node leaves the acknowledged rows in the WAL, exits cleanly within its
// shutdown budget (each flush that started reading and encoding a segment
// after the deadline made it 1.4 s of 1 s), and the next start, with the
// store back, stores every one of them.
func TestServe_SIGTERMWithAHungObjectStoreLosesNothing(t *testing.T) {
	dataDir := t.TempDir()
	s3URL, s3 := faultproxy.Via(t, testenv.S3URL(t), true)
	env := []string{"STRATA_OBJECT_STORE_URL=" + s3URL}
	n := launch(t, roleArgs(t, env, "serve", "--data-dir", dataDir, "--no-compactor"))
	s := otlptest.NewSender("sigterm-hung")
	terminateUnderLoad(t, n, s, 2, func() { s3.Set(faultproxy.Hang); time.Sleep(time.Second) })
	if !strings.Contains(n.stderr.String(), "rows left in the WAL") {
		t.Errorf("no word of the rows left in the WAL:\n%s", n.stderr.String())
	}
	s3.Set(faultproxy.Pass)
	storedAll(t, launch(t, roleArgs(t, env, "serve", "--data-dir", dataDir, "--no-compactor")), s)
}

// terminateUnderLoad sends SIGTERM to n after a second of load from
// senders running s (and what before does, if anything), and checks that
// it exits cleanly, soon.
func terminateUnderLoad(t *testing.T, n *node, s *otlptest.Sender, senders int, before func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx, n.otlpHTTP, 100) }()
	}
	time.Sleep(time.Second)
	if before != nil {
		before()
	}
	start := time.Now()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second): // hung: fail now, with its goroutines
		n.cmd.Process.Signal(syscall.SIGQUIT)
		<-n.done
		cancel()
		wg.Wait()
		t.Fatalf("strata did not exit within 30 s of SIGTERM:\n%s", n.stderr.String())
	}
	err := n.wait()
	took := time.Since(start)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, n.stderr.String())
	}
	t.Logf("exited %v after SIGTERM with %d spans acknowledged", took.Round(time.Millisecond), len(s.Acked()))
	if took > 5*time.Second {
		t.Errorf("took %v to exit; the shutdown timeout is 1s", took)
	}
}

// storedAll checks that node n stores every span s had acknowledged, and
// stops it.
func storedAll(t *testing.T, n *node, s *otlptest.Sender) {
	t.Helper()
	defer n.kill()
	stored := map[string]int{}
	for _, r := range n.query(t, `SELECT span_id FROM records`) {
		stored[r[0].(string)]++
	}
	if lost := s.Missing(stored); len(lost) > 0 {
		t.Fatalf("%d acknowledged spans missing after SIGTERM", len(lost))
	}
}

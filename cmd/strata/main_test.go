package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/internal/otlptest"
	"github.com/strata-db/strata/internal/testenv"
)

var strataBin string

// TestMain builds the strata binary once; the tests run it as users do.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-bin")
	if err != nil {
		panic(err)
	}
	strataBin = filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-tags", "duckdb_arrow", "-o", strataBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build strata:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// strata runs the binary to completion with a clean STRATA_* environment.
func strata(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(strataBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			env = append(env, kv)
		}
	}
	return env
}

func TestServe_EmbeddedDefaultsHealthAndSIGTERM(t *testing.T) {
	home := t.TempDir()
	// Defaults: data under ~/.strata.
	n := launch(t, func(n *node) ([]string, []string) {
		return []string{"serve", "--http-addr", n.admin}, []string{"HOME=" + home}
	})
	for _, p := range []string{".strata/catalog.db", ".strata/objects"} {
		if _, err := os.Stat(filepath.Join(home, p)); err != nil {
			t.Errorf("after start: %v", err)
		}
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		if n.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", n.err, n.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("strata did not exit within 10s of SIGTERM")
	}
	if !strings.Contains(n.stderr.String(), "stopped") {
		t.Errorf("no clean-shutdown log line:\n%s", n.stderr.String())
	}
}

func TestServe_PostgresCatalogAndEnvSettings(t *testing.T) {
	url := testenv.PostgresURL(t)
	schema := testenv.PostgresSchema(t, url)
	n := launch(t, func(n *node) ([]string, []string) {
		return []string{"serve"}, []string{"STRATA_DATA_DIR=" + t.TempDir(), "STRATA_HTTP_ADDR=" + n.admin,
			"STRATA_CATALOG_URL=" + url, "STRATA_CATALOG_SCHEMA=" + schema}
	})
	n.cmd.Process.Signal(syscall.SIGINT)
	if err := n.wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, n.stderr.String())
	}
	var projects int
	db := testenv.OpenPostgres(t, url)
	if err := db.QueryRow(`SELECT count(*) FROM ` + schema + `.projects WHERE id = 'default'`).Scan(&projects); err != nil || projects != 1 {
		t.Fatalf("default project in schema %s: %d, %v", schema, projects, err)
	}
}

func TestServe_BadSettingsFailWithOneClearLine(t *testing.T) {
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, nil, 0o644)
	dataDir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dataDir, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want []string
		code int
	}{
		{"malformed catalog url", nil, []string{"--catalog-url", "mysql://db"},
			[]string{"STRATA_CATALOG_URL", "unsupported catalog url"}, 1},
		{"bad postgres port", []string{"STRATA_CATALOG_URL=postgres://u@127.0.0.1:notaport/db"}, nil,
			[]string{"STRATA_CATALOG_URL", "invalid port"}, 1},
		{"unreachable postgres", nil, []string{"--catalog-url", "postgres://u@127.0.0.1:1/db"},
			[]string{"STRATA_CATALOG_URL", "connection refused"}, 1},
		{"catalog schema PostgreSQL would need quoted", nil, []string{"--catalog-url", "postgres://u@127.0.0.1:1/db", "--catalog-schema", "bad schema;"},
			[]string{"STRATA_CATALOG_SCHEMA (--catalog-schema)", "invalid schema name"}, 1},
		{"malformed object store url", []string{"STRATA_OBJECT_STORE_URL=ftp://host/x"}, nil,
			[]string{"STRATA_OBJECT_STORE_URL", "unsupported scheme"}, 1},
		{"relative object store path", nil, []string{"--object-store-url", "file://objects"},
			[]string{"STRATA_OBJECT_STORE_URL", "absolute"}, 1},
		{"data dir is a file", nil, []string{"--data-dir", aFile},
			[]string{"STRATA_DATA_DIR", "not a directory"}, 1},
		{"data dir on a read-only file system", nil, []string{"--data-dir", "/proc/strata-test"},
			[]string{"STRATA_DATA_DIR", "/proc/strata-test"}, 1},
		{"cache dir holding the objects", nil, []string{"--cache-dir", dataDir},
			[]string{"STRATA_CACHE_DIR", "overlaps the object store"}, 1},
		{"cache dir linked to the data dir", nil, []string{"--cache-dir", link},
			[]string{"STRATA_CACHE_DIR", "overlaps the object store"}, 1},
		{"cache size not a number", nil, []string{"--cache-size", "NaN"}, []string{"invalid size", "cache-size"}, 2},
		{"cache size past int64", nil, []string{"--cache-size", "9999999999999999999999"}, []string{"invalid size", "cache-size"}, 2},
		{"cache size of zero", nil, []string{"--cache-size", "0"}, []string{"STRATA_CACHE_SIZE", "under 1 MiB"}, 1},
		{"query cache size of zero", nil, []string{"--query-cache-size", "0"}, []string{"STRATA_QUERY_CACHE_SIZE", "under 1 MiB"}, 1},
		{"cache node given as a URL", nil, []string{"--cache-nodes", "http://127.0.0.1:9002"}, []string{"STRATA_CACHE_NODES", "host:port"}, 1},
		{"no query may run", nil, []string{"--query-concurrency", "0"}, []string{"STRATA_QUERY_CONCURRENCY", "at least 1"}, 1},
		{"negative query threads", nil, []string{"--query-threads", "-3"}, []string{"STRATA_QUERY_THREADS", "negative"}, 1},
		{"request size of zero", nil, []string{"--max-request-bytes", "0"}, []string{"STRATA_MAX_REQUEST_BYTES", "under 1 KiB"}, 1},
		{"negative flush workers", []string{"STRATA_FLUSH_WORKERS=-1"}, nil, []string{"STRATA_FLUSH_WORKERS", "negative"}, 1},
		{"flush interval of zero", nil, []string{"--flush-interval", "0s"}, []string{"STRATA_FLUSH_INTERVAL", "longer than 0"}, 1},
		{"duration without a unit", nil, []string{"--query-timeout", "30"}, []string{"query-timeout", "invalid duration", "30s"}, 2},
		{"duration in the environment without a unit", []string{"STRATA_GC_GRACE=10"}, nil, []string{"STRATA_GC_GRACE", "invalid duration"}, 2},
		{"advertised host with a port", nil, []string{"--advertise-host", "10.0.0.5:9999"}, []string{"STRATA_ADVERTISE_HOST", "bare host"}, 1},
		{"gc grace shorter than a query", nil, []string{"--gc-grace", "30s"},
			[]string{"STRATA_GC_GRACE", "query-timeout"}, 1},
		{"query timeout of zero", nil, []string{"--query-timeout", "0"},
			[]string{"STRATA_QUERY_TIMEOUT", "longer than 0"}, 1},
		{"negative gc grace", []string{"STRATA_GC_GRACE=-5m"}, nil,
			[]string{"STRATA_GC_GRACE", "negative"}, 1},
		{"lease too short to renew", nil, []string{"--compact-lease-ttl", "2ns"},
			[]string{"STRATA_COMPACT_LEASE_TTL", "under 1s"}, 1},
		{"merge of one file", nil, []string{"--compact-max-inputs", "1"},
			[]string{"STRATA_COMPACT_MAX_INPUTS", "at least 2"}, 1},
		{"target size of a byte", nil, []string{"--compact-target-size", "1"},
			[]string{"STRATA_COMPACT_TARGET_SIZE", "under 1 MiB"}, 1},
		{"unknown flag", nil, []string{"--nope"}, []string{"flag provided but not defined: --nope", "strata serve --help"}, 2},
		// What a value looks like, where the flag package said "parse error" (QA).
		{"flag not a whole number", nil, []string{"--flush-workers", "x"}, []string{"--flush-workers", "want a whole number"}, 2},
		{"boolean in the environment", []string{"STRATA_NO_COMPACTOR=maybe"}, nil, []string{"STRATA_NO_COMPACTOR", "want true or false"}, 2},
		{"unknown log level", nil, []string{"--log-level", "verbose"}, []string{"STRATA_LOG_LEVEL", "want debug, info, warn or error"}, 1},
		{"WAL limit under a segment", nil, []string{"--max-scratch-bytes", "2MiB", "--flush-bytes", "64MiB"},
			[]string{"STRATA_MAX_SCRATCH_BYTES", "under --flush-bytes"}, 1},
		{"http address in use", nil, []string{"--http-addr", "256.0.0.1:99999"}, []string{"STRATA_HTTP_ADDR"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data-dir", dataDir}, tc.args...)
			_, stderr, code := strata(t, tc.env, args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 {
				t.Errorf("want one line on stderr, got %d:\n%s", len(lines), stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace on stderr:\n%s", stderr)
			}
		})
	}
}

// The address flags of the other roles are checked like --cache-nodes:
// an ingest node given without a port, or as a URL, was taken and then
// failed every query's request to it.
func TestRoles_BadAddressesFailWithOneClearLine(t *testing.T) {
	dataDir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"query", "--ingest-nodes", "127.0.0.1"}, "STRATA_INGEST_NODES"},
		{[]string{"query", "--ingest-nodes", "http://127.0.0.1:41201"}, "STRATA_INGEST_NODES"},
		{[]string{"ingest", "--advertise-host", "127.0.0.1:9999"}, "STRATA_ADVERTISE_HOST"},
		{[]string{"ingest", "--advertise-host", "h name"}, "STRATA_ADVERTISE_HOST"},
		{[]string{"query", "--ingest-timeout", "1m", "--query-timeout", "30s"}, "STRATA_INGEST_TIMEOUT"},
	} {
		args := append(tc.args, "--data-dir", dataDir, "--http-addr", "127.0.0.1:0")
		if tc.args[0] == "query" {
			args = append(args, "--query-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0")
		} else {
			args = append(args, "--otlp-http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0")
		}
		_, stderr, code := strata(t, nil, args...)
		if code != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(strings.TrimSpace(stderr), "\n") {
			t.Errorf("%v: exit %d, %q; want 1 and one line naming %s", tc.args, code, stderr, tc.want)
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	out, _, code := strata(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "Commands:") {
		t.Fatalf("strata --help: %d\n%s", code, out)
	}
	for _, name := range []string{"serve", "ingest", "query", "cache", "compactor", "bench", "version"} {
		out, _, code := strata(t, nil, name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: strata "+name) {
			t.Errorf("strata %s --help: exit %d\n%s", name, code, out)
		}
	}
	if _, stderr, code := strata(t, nil, "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := strata(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "strata ") || !strings.Contains(out, "DuckDB v1.5") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// A project's retention is set from the command line, in days or as a Go
// duration, and listed; mistakes exit 2 with one line. A listing does not
// make a catalog, and --id and --retention are not read from the
// environment (QA: STRATA_ID=oops made a plain listing create "oops").
func TestProject_RetentionIsSetAndListed(t *testing.T) {
	dir := t.TempDir()
	env := []string{"STRATA_DATA_DIR=" + dir, "STRATA_ID=oops", "STRATA_RETENTION=7d"}
	if _, errOut, code := strata(t, env, "project"); code == 0 || !strings.Contains(errOut, "no catalog at") {
		t.Fatalf("list without a catalog: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "catalog.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a listing made a catalog: %v", err)
	}
	out, errOut, code := strata(t, env, "project", "--id", "web", "--retention", "90d")
	if code != 0 || !regexp.MustCompile(`(?m)^default\s+30d\s`).MatchString(out) || strings.Contains(out, "oops") {
		t.Fatalf("create web on a new catalog: %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code = strata(t, env, "project", "--id", "default", "--retention", "36h"); code != 0 {
		t.Fatalf("change default: %d %s", code, errOut)
	}
	out, _, _ = strata(t, env, "project")
	if !regexp.MustCompile(`(?m)^default\s+36h0m0s\s`).MatchString(out) || !regexp.MustCompile(`(?m)^web\s+90d\s`).MatchString(out) {
		t.Errorf("after the changes:\n%s", out)
	}
	for _, args := range [][]string{
		{"project", "--id", "web", "--retention", "10m"},
		{"project", "--id", "web", "--retention", "forever"},
		{"project", "--retention", "7d"},
		{"project", "--id", "web", "--retention", "200000d"},
		{"project", "--id", "web", "--retention", "NaNd"},
		{"project", "--id", "Bad/ID", "--retention", "7d"},
	} {
		if _, errOut, code := strata(t, env, args...); code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}

// OTLP/HTTP and the query API speak HTTP/2 without TLS (h2c) beside
// HTTP/1.1, as OTLP/HTTP allows (QA: a client with prior knowledge of
// HTTP/2 had its connection reset).
func TestServe_HTTP2WithoutTLS(t *testing.T) {
	n := startNode(t, t.TempDir())
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
	for _, c := range []struct{ url, ctype, body string }{
		{n.otlpHTTP + "/v1/traces", "application/json", `{"resourceSpans":[]}`},
		{n.queryURL + "/v1/query", "application/json", `{"sql":"SELECT 1"}`},
	} {
		resp, err := client.Post(c.url, c.ctype, strings.NewReader(c.body))
		if err != nil {
			t.Fatalf("%s over h2c: %v", c.url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Errorf("%s over h2c: %d %s", c.url, resp.StatusCode, resp.Proto)
		}
	}
}

// /metrics says which build a node runs, and how long the oldest row not
// yet flushed has waited (QA: no flush-lag gauge, no build info).
func TestServe_BuildInfoAndFlushLag(t *testing.T) {
	n := startNode(t, t.TempDir(), "--flush-interval", "1h")
	if age := n.metric(t, "strata_ingest_unflushed_age_seconds"); age != 0 {
		t.Errorf("flush lag with nothing buffered: %v", age)
	}
	if code, err := otlptest.NewSender("lag").Send(context.Background(), http.DefaultClient, n.otlpHTTP, 5); err != nil || code != http.StatusOK {
		t.Fatalf("send: %d %v", code, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if age := n.metric(t, "strata_ingest_unflushed_age_seconds"); age < 1 || age > 60 {
		t.Errorf("flush lag of rows sent a second ago: %v s", age)
	}
	resp, err := http.Get("http://" + n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`strata_build_info\{.*duckdb="v1\.5.*\} 1`).Match(body) {
		t.Error("no strata_build_info with the DuckDB version")
	}
}

package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/strata-db/strata/internal/testenv"
	"github.com/strata-db/strata/objstore"
)

// forEachStore runs the acceptance suite against a local directory and a
// real S3-compatible server. Each run gets its own key prefix.
func forEachStore(t *testing.T, test func(t *testing.T, b *objstore.Bucket, prefix string)) {
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		b, err := objstore.Open(context.Background(), "file://"+filepath.Join(t.TempDir(), "objects"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		test(t, b, "p/")
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		b, err := objstore.Open(context.Background(), testenv.S3URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		test(t, b, "run-"+testenv.RandomHex(4)+"/")
	})
}

func TestBucket_PutGetListDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, b *objstore.Bucket, prefix string) {
		ctx := context.Background()
		payload := bytes.Repeat([]byte("strata"), 100_000) // 600 kB
		keys := []string{prefix + "a/x.parquet", prefix + "a/y.parquet", prefix + "b/z.parquet"}
		for _, k := range keys {
			if err := b.Put(ctx, k, payload); err != nil {
				t.Fatal(err)
			}
		}
		got, err := b.Get(ctx, keys[0])
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("get: %d bytes, %v", len(got), err)
		}
		attrs, err := b.Attributes(ctx, keys[1])
		if err != nil || attrs.Size != int64(len(payload)) {
			t.Fatalf("attributes: %+v, %v", attrs, err)
		}
		// Range reads are what the cache tier uses.
		r, err := b.NewRangeReader(ctx, keys[2], 6, 12, nil)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(r)
		r.Close()
		if string(part) != "stratastrata" {
			t.Fatalf("range read %q", part)
		}
		var listed []string
		it := b.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			listed = append(listed, obj.Key)
		}
		if fmt.Sprint(listed) != fmt.Sprint(keys) {
			t.Fatalf("list = %v, want %v", listed, keys)
		}
		if err := b.Delete(ctx, keys[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, keys[0]); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("get deleted: err = %v, want ErrNotExist", err)
		}
		for _, k := range keys[1:] {
			b.Delete(ctx, k)
		}
	})
}

func TestOpen_BadURLs(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, []byte("x"), 0o644)
	cases := []struct{ url, want string }{
		{"ftp://host/dir", "unsupported scheme"},
		{"/no/scheme", "no scheme"},
		{"s3://", "no bucket name"},
		{"file://relative/path", "want file:///absolute/path"},
		{"file://" + file + "/objects", "not a directory"},
		{"%zz", "parse object store url"},
	}
	for _, tc := range cases {
		_, err := objstore.Open(ctx, tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want error containing %q", tc.url, err, tc.want)
		}
	}
}

func TestOpen_UnreachableS3(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "y")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	// Port 1 on loopback: nothing listens there.
	_, err := objstore.Open(ctx, "s3://bucket?endpoint=http://127.0.0.1:1&use_path_style=true&region=us-east-1")
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("unreachable s3: err = %v", err)
	}
}

// Errors and logs name the object store by its URL: secrets hidden, the
// rest as the user wrote it.
func TestRedact(t *testing.T) {
	cases := []struct{ url, want string }{
		{"s3://bucket?endpoint=http://127.0.0.1:9000&use_path_style=true", "s3://bucket?endpoint=http://127.0.0.1:9000&use_path_style=true"},
		{"s3://bucket?endpoint=http://h:1&secret_key=abc", "s3://bucket?endpoint=http%3A%2F%2Fh%3A1&secret_key=xxxxx"},
		{"azblob://c?sas_token=abc", "azblob://c?sas_token=xxxxx"},
		{"s3://user:pass@bucket", "s3://user:xxxxx@bucket"},
		{"file:///data/objects", "file:///data/objects"},
	}
	for _, tc := range cases {
		if got := objstore.Redact(tc.url); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestOpen_S3WithoutCredentialsSaysSo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	home := t.TempDir() // no ~/.aws
	t.Setenv("HOME", home)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	// Keep the SDK off the network: no instance metadata service.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	_, err := objstore.Open(ctx, "s3://bucket?endpoint=http://127.0.0.1:1&use_path_style=true&region=us-east-1")
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials found") {
		t.Fatalf("s3 without credentials: err = %v", err)
	}
}

func TestDataKey_RoundTrip(t *testing.T) {
	hour := time.Date(2026, 11, 23, 7, 42, 0, 0, time.UTC)
	id := objstore.NewID(hour)
	key := objstore.DataKey("default", "records", hour, 1, id)
	want := "default/records/date=2026-11-23/hour=07/1-" + id.String() + ".parquet"
	if key != want {
		t.Fatalf("key = %s, want %s", key, want)
	}
	p, err := objstore.ParseDataKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if p.Project != "default" || p.Table != "records" || p.Level != 1 || p.ID != id ||
		!p.Hour.Equal(hour.Truncate(time.Hour)) || p.Partition != "date=2026-11-23/hour=07" {
		t.Fatalf("parsed %+v", p)
	}
	day := objstore.DayKey("default", "records", hour, 2, id)
	if want := "default/records/date=2026-11-23/2-" + id.String() + ".parquet"; day != want {
		t.Fatalf("day key = %s, want %s", day, want)
	}
	if p, err := objstore.ParseDataKey(day); err != nil || !p.Day || p.Level != 2 || p.Partition != "date=2026-11-23" ||
		!p.Hour.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("parsed day key %+v, %v", p, err)
	}
	for _, bad := range []string{"x.parquet", "a/b/date=2026-11-23/hour=07/1-zz.parquet", "a/b/date=x/hour=07/1-" + id.String() + ".parquet", "a/b/c/d/e.txt",
		"a/b/date=2026-11-23/hour=07/x/1-" + id.String() + ".parquet", "a/b/hour=07/1-" + id.String() + ".parquet"} {
		if _, err := objstore.ParseDataKey(bad); err == nil {
			t.Errorf("ParseDataKey(%q) accepted", bad)
		}
	}
}

// What a file:// upload killed midway leaves is recognised as such, and
// nothing else is.
func TestStrandedUpload(t *testing.T) {
	hour := time.Date(2026, 11, 23, 7, 42, 0, 0, time.UTC)
	key := objstore.DataKey("default", "records", hour, 1, objstore.NewID(hour))
	for name, want := range map[string]bool{
		key + ".18eaee7efd69ffae.tmp":        true,
		key:                                  false,
		key + ".tmp":                         false,
		key + "..tmp":                        false,
		key + ".xyz.tmp":                     false,
		"default/notes.18eaee7efd69ffae.tmp": false,
	} {
		if got := objstore.StrandedUpload(name); got != want {
			t.Errorf("StrandedUpload(%q) = %v, want %v", name, got, want)
		}
	}
}

// Reading an object uploaded in parts writes no unstructured line to
// stderr (the AWS SDK logged "Skipped validation of multipart checksum"
// on every such read); the SDK's lines go to slog.
func TestS3_MultipartReadsLogNothingUnstructured(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w // before Open: the SDK's default logger takes it then
	defer func() { os.Stderr = stderr }()
	ctx := context.Background()
	b, err := objstore.Open(ctx, testenv.S3URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	key := "multipart-" + testenv.RandomHex(4)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: several parts
	if err := b.Put(ctx, key, payload); err != nil {
		t.Fatal(err)
	}
	defer b.Delete(ctx, key)
	got, err := b.Get(ctx, key)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	os.Stderr = stderr
	w.Close()
	written, _ := io.ReadAll(r)
	if len(written) > 0 {
		t.Errorf("the S3 client wrote to stderr: %q", written)
	}
}

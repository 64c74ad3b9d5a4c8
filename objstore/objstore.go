// Package objstore opens the object store behind a gocloud.dev/blob URL and
// defines where data files live in it. Other strata packages never talk to
// a cloud SDK; everything goes through a Bucket (this one touches the S3
// client only to send its log lines to slog).
//
// Supported URLs:
//
//	file:///var/lib/strata/objects            a local directory
//	s3://bucket?endpoint=http://host:port&use_path_style=true&region=us-east-1
//	gs://bucket                                Google Cloud Storage
//	azblob://container                         Azure Blob Storage
//
// Credentials come from each provider's usual environment (AWS_ACCESS_KEY_ID,
// GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT, …).
package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	_ "gocloud.dev/blob/fileblob"  // file://
	_ "gocloud.dev/blob/gcsblob"   // gs://
	"gocloud.dev/gcerrors"
)

// Bucket is an opened object store.
type Bucket struct {
	*blob.Bucket
	// dir is the root directory of a file:// bucket, whose writes Put must
	// fsync itself (fileblob does not); empty for remote stores.
	dir string
	url string
}

// ErrNotExist reports a missing object.
var ErrNotExist = errors.New("object does not exist")

// Open opens the bucket and checks that it is reachable. A file:// bucket's
// directory is created if missing.
func Open(ctx context.Context, rawURL string) (*Bucket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse object store url: %w", err)
	}
	b := &Bucket{url: Redact(rawURL)}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("object store url %q: want file:///absolute/path", b.url)
		}
		if !filepath.IsAbs(u.Path) {
			return nil, fmt.Errorf("object store url %q: path must be absolute", b.url)
		}
		b.dir = filepath.Clean(u.Path)
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return nil, fmt.Errorf("object store directory: %w", err)
		}
		q := u.Query()
		// Temp files beside their final name so the rename is atomic, and
		// no metadata sidecar files.
		q.Set("no_tmp_dir", "true")
		q.Set("metadata", "skip")
		u.RawQuery = q.Encode()
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return nil, fmt.Errorf("object store url %q: no bucket name", b.url)
		}
	case "":
		return nil, fmt.Errorf("object store url %q: no scheme; want file://, s3://, gs:// or azblob://", b.url)
	default:
		return nil, fmt.Errorf("object store url %q: unsupported scheme %q; want file://, s3://, gs:// or azblob://", b.url, u.Scheme)
	}
	var bucket *blob.Bucket
	if u.Scheme == "s3" {
		bucket, err = openS3(ctx, u)
	} else {
		bucket, err = blob.OpenBucket(ctx, u.String())
	}
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", b.url, err)
	}
	b.Bucket = bucket
	if err := b.Reachable(ctx); err != nil {
		bucket.Close()
		if u.Scheme == "s3" && strings.Contains(err.Error(), "get credentials") {
			return nil, fmt.Errorf("open object store %s: no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE): %w", b.url, err)
		}
		return nil, fmt.Errorf("open object store %s: %w", b.url, err)
	}
	return b, nil
}

// Reachable says why the bucket cannot be used now, or nil: it does not
// answer, does not exist, or (file://) its directory is gone, which
// listing would take for an empty bucket.
func (b *Bucket) Reachable(ctx context.Context) error {
	if b.dir != "" {
		if st, err := os.Stat(b.dir); err != nil {
			return err
		} else if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", b.dir)
		}
	}
	ok, err := b.IsAccessible(ctx)
	if err == nil && !ok {
		err = errors.New("bucket does not exist")
	}
	return err
}

// String names the bucket by its URL, without credentials.
func (b *Bucket) String() string { return b.url }

// Put writes an object. When it returns nil the object is durable: remote
// stores promise that on a successful upload, and for a local directory Put
// fsyncs the file and its directory.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	if b.dir == "" {
		// WriteAll sends the MD5 of data, which the store checks.
		if err := b.WriteAll(ctx, key, data, nil); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return nil
	}
	// A local file has no transfer to check: WriteAll would hash data
	// twice (its MD5, then the writer's check of it) for nothing.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(wctx, key, &blob.WriterOptions{DisableContentTypeDetection: true})
	if err == nil {
		if _, err = w.Write(data); err != nil {
			cancel() // Close then drops the partial file
		}
		err = errors.Join(err, w.Close())
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	path := filepath.Join(b.dir, filepath.FromSlash(key))
	if err := syncPath(path); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncPath(filepath.Dir(path)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutFile uploads a local file as an object, streaming, with Put's
// durability.
func (b *Bucket) PutFile(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer f.Close()
	if err := b.Upload(ctx, key, f, &blob.WriterOptions{ContentType: "application/vnd.apache.parquet"}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if b.dir == "" {
		return nil
	}
	dst := filepath.Join(b.dir, filepath.FromSlash(key))
	if err := errors.Join(syncPath(dst), syncPath(filepath.Dir(dst))); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// GetFile downloads an object into a local file, streaming.
func (b *Bucket) GetFile(ctx context.Context, key, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = b.Download(ctx, key, f, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("get %s: %w", key, classify(err))
	}
	return nil
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// Get reads a whole object; a missing one gives an error wrapping ErrNotExist.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, classify(err))
	}
	return data, nil
}

// classify maps gocloud's not-found error onto ErrNotExist.
func classify(err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return errors.Join(ErrNotExist, err)
	}
	return err
}

// Redact hides any password or secret in a URL so it can be logged.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparseable url>"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	redacted := false
	for k := range q {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "secret") || strings.Contains(lk, "password") || strings.Contains(lk, "token") {
			q.Set(k, "xxxxx")
			redacted = true
		}
	}
	if redacted {
		u.RawQuery = q.Encode()
	} // else the query as the user wrote it (Encode escapes endpoint=http://…)
	return u.String()
}

// LocalDir is the root directory of a file:// bucket.
func (b *Bucket) LocalDir() (string, bool) { return b.dir, b.dir != "" }

// LocalPath is where a file:// bucket keeps an object, so readers can use
// the file in place instead of copying it.
func (b *Bucket) LocalPath(key string) (string, bool) {
	if b.dir == "" {
		return "", false
	}
	return filepath.Join(b.dir, filepath.FromSlash(key)), true
}

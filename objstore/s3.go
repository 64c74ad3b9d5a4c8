package objstore

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// openS3 opens an s3:// bucket as gocloud's URL opener does, with every
// setting of the URL, then gives its client a logger that writes to slog:
// the SDK's own wrote unstructured lines to stderr, one on each read of an
// object uploaded in parts ("Skipped validation of multipart checksum",
// which says only that such an object has no whole-object checksum; that
// line is left out).
func openS3(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	opener := &s3blob.URLOpener{}
	first, err := opener.OpenBucketURL(ctx, u) // reads the URL's settings into opener.Options
	if err != nil {
		return nil, err
	}
	defer first.Close()
	var client *s3.Client
	if !first.As(&client) {
		return nil, fmt.Errorf("open bucket %s: no S3 client behind it", u.Host)
	}
	o := client.Options()
	o.Logger = slogLogger{}
	o.DisableLogOutputChecksumValidationSkipped = true
	// A store that accepts a connection and never answers held a read
	// (a cache fill) for its whole 10-minute timeout, and gocloud's
	// Bucket.Close waits for reads in flight: strata serve did not exit
	// after SIGTERM. Headers come back at once from a working store.
	if hc, ok := o.HTTPClient.(*awshttp.BuildableClient); ok {
		o.HTTPClient = hc.WithTransportOptions(func(t *http.Transport) { t.ResponseHeaderTimeout = time.Minute })
	}
	return s3blob.OpenBucket(ctx, s3.New(o), u.Host, &opener.Options)
}

// slogLogger sends the AWS SDK's log lines to slog.
type slogLogger struct{}

func (slogLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	slog.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "aws-sdk")
}

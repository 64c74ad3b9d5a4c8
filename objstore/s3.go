package objstore

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

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

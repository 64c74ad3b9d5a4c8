package engine

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// The codec Parquet files are written with is ours, compresses at the
// level asked, and its pages decode with arrow-go's decoder, from many
// writers at once.
func TestZstdCodecKeepsEncodersAndRoundTrips(t *testing.T) {
	codec, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := codec.(*zstdCodec)
	if !ok {
		t.Fatalf("zstd codec is %T, want *zstdCodec", codec)
	}
	src := bytes.Repeat([]byte(`{"http.route":"/api/v1/orders/{id}","http.status_code":200}`), 2000)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			level := []int{1, 6, compress.DefaultCompressionLevel}[g%3]
			for range 20 {
				enc := c.EncodeLevel(nil, src, level)
				if len(enc) >= len(src)/10 {
					errs <- fmt.Errorf("level %d: %d bytes from %d", level, len(enc), len(src))
					return
				}
				if dec := c.Decode(nil, enc); !bytes.Equal(dec, src) {
					errs <- fmt.Errorf("level %d: decoded %d bytes, not the %d encoded", level, len(dec), len(src))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedBetterCompression, zstd.SpeedDefault} {
		if n := len(c.idle[l]); n == 0 || n > maxIdleEncoders {
			t.Errorf("level %s: %d idle encoders kept, want 1..%d", l, n, maxIdleEncoders)
		}
	}
}

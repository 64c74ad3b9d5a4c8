package engine

import (
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// arrow-go keeps its zstd encoders in a sync.Pool, which every garbage
// collection empties; each new encoder then allocates and clears 8.6 MiB
// (20 MiB at level 6) of history and match tables. Ingest writes a Parquet
// page per column every few milliseconds and collects garbage several
// times a second: 1.1 GB of the 14 GB it allocated in 20 s at 60k spans/s.
// This codec keeps a few idle encoders per level for good; decoding stays
// arrow-go's.
func init() {
	base, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		panic(err)
	}
	compress.RegisterCodec(compress.Codecs.Zstd, &zstdCodec{Codec: base, idle: map[zstd.EncoderLevel][]*zstd.Encoder{}})
}

// maxIdleEncoders bounds the encoders kept per level: as many as the
// Parquet writers that usually compress at once (flush workers, merges).
const maxIdleEncoders = 4

type zstdCodec struct {
	compress.Codec // arrow-go's: decoding and streams

	mu   sync.Mutex
	idle map[zstd.EncoderLevel][]*zstd.Encoder
}

func (c *zstdCodec) Encode(dst, src []byte) []byte {
	return c.EncodeLevel(dst, src, compress.DefaultCompressionLevel)
}

// EncodeLevel compresses src as one zstd frame, with the options arrow-go
// uses, so files are byte for byte what its codec writes.
func (c *zstdCodec) EncodeLevel(dst, src []byte, level int) []byte {
	l := zstd.SpeedDefault
	if level != compress.DefaultCompressionLevel {
		l = zstd.EncoderLevelFromZstd(level)
	}
	enc := c.get(l)
	dst = enc.EncodeAll(src, dst[:0])
	c.put(l, enc)
	return dst
}

func (c *zstdCodec) get(l zstd.EncoderLevel) *zstd.Encoder {
	c.mu.Lock()
	if n := len(c.idle[l]); n > 0 {
		enc := c.idle[l][n-1]
		c.idle[l] = c.idle[l][:n-1]
		c.mu.Unlock()
		return enc
	}
	c.mu.Unlock()
	// The options cannot fail.
	enc, _ := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(l),
		zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true),
		zstd.WithWindowSize(encoderWindow))
	return enc
}

func (c *zstdCodec) put(l zstd.EncoderLevel, enc *zstd.Encoder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[l]) < maxIdleEncoders {
		c.idle[l] = append(c.idle[l], enc)
	}
}

// encoderWindow is twice arrow-go's 1 MiB pages. Each page is a frame of
// its own, so a longer window finds nothing more, but the encoder keeps a
// history of twice the window: 16 MiB each at the default 8 MiB, 4 MiB
// now. A window of one page (1 MiB) made ingest ~3 % slower, the history
// shifted down within each page; at two pages no page is shifted.
const encoderWindow = 2 << 20

package engine

import (
	"bytes"
	"fmt"

	"github.com/FastFilter/xorfilter"
	"github.com/zeebo/xxh3"
)

// A trace filter says which trace ids a file may hold: a binary fuse filter
// (about 9 bits per distinct trace id, 0.4 % false positives) built when
// the file is written and kept in the catalog beside the file's row. A
// lookup by trace id checks the filters of candidate files in memory and
// opens only those that may hold the trace.

// TraceKey is the filter key of a trace id as stored (lower-case hex).
func TraceKey(traceID string) uint64 { return xxh3.HashString(traceID) }

// buildTraceFilter encodes a filter of the given keys (nil for none).
func buildTraceFilter(keys []uint64) ([]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	f, err := xorfilter.PopulateBinaryFuse8(keys)
	if err != nil {
		return nil, fmt.Errorf("build trace filter: %w", err)
	}
	var buf bytes.Buffer
	if err := f.Save(&buf); err != nil {
		return nil, fmt.Errorf("save trace filter: %w", err)
	}
	return buf.Bytes(), nil
}

// TraceFilter is a loaded trace filter.
type TraceFilter struct{ f *xorfilter.BinaryFuse8 }

// LoadTraceFilter decodes a filter written by WriteParquet.
func LoadTraceFilter(b []byte) (*TraceFilter, error) {
	f, err := xorfilter.LoadBinaryFuse8(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("load trace filter: %w", err)
	}
	return &TraceFilter{f: f}, nil
}

// MayContain reports whether the file may hold the trace (false means
// certainly not).
func (t *TraceFilter) MayContain(key uint64) bool { return t.f.Contains(key) }

// Size is the filter's size in memory, for caches.
func (t *TraceFilter) Size() int { return len(t.f.Fingerprints) + 64 }

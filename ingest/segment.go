package ingest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/oklog/ulid/v2"

	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/objstore"
)

// partKey names the rows that become one Parquet file: one project, one
// table, one hour.
type partKey struct {
	project, table string
	hour           int64 // Unix hour
}

func (k partKey) hourTime() time.Time { return time.Unix(k.hour*3600, 0).UTC() }

// segment is one WAL segment. Its rows live in the file, not in memory:
// the page cache keeps recent segments hot, and the flusher reads a sealed
// segment back when it writes its Parquet files. In memory are only counts
// and the set of parts (project, table, hour) it holds.
type segment struct {
	seq       uint64
	version   int // table schema version of its batches
	nonce     [16]byte
	created   time.Time
	path      string
	diskBytes int64
	rows      int64
	first     time.Time         // when the first row arrived; the flush age counts from here
	flushing  bool              // a flush has taken it (guarded by Ingester.mu)
	parts     map[partKey]int64 // rows per part
	frames    []frameRef        // where each frame is, for snapshots
	mapping   *walMap           // the file mapped for snapshots, once one asks (sealed only)
}

// frameRef locates one frame's payload in a segment file.
type frameRef struct {
	off  int64
	n    int
	part partKey
}

func newSegment(seq uint64, version int, nonce [16]byte, created time.Time, path string) *segment {
	return &segment{seq: seq, version: version, nonce: nonce, created: created, path: path, parts: map[partKey]int64{}}
}

// partOf is the part of a batch, which holds rows of a single hour.
func partOf(key bufKey, rec arrow.RecordBatch) partKey {
	t, _ := schema.Lookup(key.table)
	ts := rec.Column(t.Index(t.TimeColumn)).(*array.Timestamp)
	return partKey{project: key.project, table: key.table, hour: hourOf(ts.Value(0))}
}

// count records that rec's rows are in the segment, in the frame whose
// payload is at off (n bytes).
func (s *segment) count(key bufKey, rec arrow.RecordBatch, off int64, n int) {
	if rec.NumRows() == 0 {
		return
	}
	pk := partOf(key, rec)
	s.parts[pk] += rec.NumRows()
	s.rows += rec.NumRows()
	s.frames = append(s.frames, frameRef{off: off, n: n, part: pk})
}

// fileKey is the object key the rows of pk in this segment are flushed to.
// It depends only on the segment (its creation time and random nonce) and
// pk, so a retried flush writes and registers the very same key.
func (s *segment) fileKey(pk partKey) string {
	h := sha256.New()
	h.Write(s.nonce[:])
	fmt.Fprintf(h, "\x00%s\x00%s\x00%d", pk.project, pk.table, pk.hour)
	sum := h.Sum(nil)
	var id ulid.ULID
	if err := id.SetTime(uint64(s.created.UnixMilli())); err != nil {
		panic(err) // creation times are always valid ULID times
	}
	copy(id[6:], sum[:10])
	return objstore.DataKey(pk.project, pk.table, pk.hourTime(), 0, id)
}

func hourOf(ts arrow.Timestamp) int64 {
	us := int64(ts)
	h := us / (3600 * 1e6)
	if us < 0 && us%(3600*1e6) != 0 {
		h-- // floor for times before 1970
	}
	return h
}

// splitByHour cuts rec into one batch per hour of its time column. The
// common case, all rows in one hour, returns rec itself (retained).
func splitByHour(t *schema.Table, rec arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	ts := rec.Column(t.Index(t.TimeColumn)).(*array.Timestamp)
	vals := ts.TimestampValues()
	if len(vals) == 0 {
		return nil, nil
	}
	first := hourOf(vals[0])
	same := true
	for _, v := range vals {
		if hourOf(v) != first {
			same = false
			break
		}
	}
	if same {
		rec.Retain()
		return []arrow.RecordBatch{rec}, nil
	}
	groups := map[int64][]int32{}
	var order []int64
	for i, v := range vals {
		h := hourOf(v)
		if _, ok := groups[h]; !ok {
			order = append(order, h)
		}
		groups[h] = append(groups[h], int32(i))
	}
	out := make([]arrow.RecordBatch, 0, len(order))
	for _, h := range order {
		bld := array.NewInt32Builder(memory.DefaultAllocator)
		bld.AppendValues(groups[h], nil)
		idx := bld.NewArray()
		bld.Release()
		d, err := compute.Take(context.Background(), *compute.DefaultTakeOptions(),
			compute.NewDatumWithoutOwning(rec), compute.NewDatumWithoutOwning(idx))
		idx.Release()
		if err != nil {
			for _, o := range out {
				o.Release()
			}
			return nil, fmt.Errorf("split by hour: %w", err)
		}
		out = append(out, d.(*compute.RecordDatum).Value)
	}
	return out, nil
}

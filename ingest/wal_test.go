package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/strata-db/strata/engine/schema"
)

// spanBatch converts n simple spans into a records batch.
func spanBatch(t testing.TB, n int, start time.Time) arrow.RecordBatch {
	t.Helper()
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetTraceID([16]byte{1, byte(i), byte(i >> 8)})
		sp.SetSpanID([8]byte{2, byte(i), byte(i >> 8)})
		sp.SetName("op")
		ts := start.Add(time.Duration(i) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Millisecond)))
	}
	rb := newRecordsBuilder(memory.DefaultAllocator, Window{Now: start.Add(time.Hour)}, n)
	if err := rb.addTraces("default", td, nil); err != nil {
		t.Fatal(err)
	}
	return rb.finish()
}

// writeSegment writes a segment of the given batches and returns its path
// and the size of each frame.
func writeSegment(t testing.TB, dir string, batches []arrow.RecordBatch) (string, []int) {
	t.Helper()
	f, seg, err := createSegment(dir, 7, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, b := range batches {
		frame, err := encodeFrame(bufKey{project: "default", table: schema.Records}, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.f.Write(frame); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(frame))
	}
	f.f.Close()
	return seg.path, sizes
}

func TestWAL_ReplayKeepsWholeFramesAndCutsATornTail(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	batches := []arrow.RecordBatch{spanBatch(t, 10, start), spanBatch(t, 20, start), spanBatch(t, 30, start)}
	for name, tear := range map[string]func(path string, sizes []int){
		"intact":             func(string, []int) {},
		"half a frame":       func(p string, s []int) { truncate(t, p, -int64(s[2]/2)) },
		"half a header":      func(p string, s []int) { truncate(t, p, -int64(s[2]-4)) },
		"bit flip in frame":  func(p string, s []int) { flip(t, p, -int64(s[2]/2)) },
		"garbage appended":   func(p string, s []int) { appendBytes(t, p, bytes.Repeat([]byte{0xab}, 100)) },
		"huge length prefix": func(p string, s []int) { appendBytes(t, p, []byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0}) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path, sizes := writeSegment(t, dir, batches)
			tear(path, sizes)
			seg, err := readSegment(dir, 7, true)
			if err != nil {
				t.Fatal(err)
			}
			want := int64(60)
			wantSize := int64(headerSize + sizes[0] + sizes[1] + sizes[2])
			switch name {
			case "half a frame", "half a header", "bit flip in frame":
				// The last frame of the newest segment: cut as a torn
				// write (a whole one, by its length, copied first).
				want, wantSize = 30, wantSize-int64(sizes[2])
			}
			if kept := damagedCopies(t, path); (len(kept) == 1) != (name == "bit flip in frame") {
				t.Errorf("copies kept: %v", kept)
			}
			if seg.rows != want {
				t.Fatalf("replayed %d rows, want %d", seg.rows, want)
			}
			st, _ := os.Stat(path)
			if st.Size() != wantSize || seg.diskBytes != wantSize {
				t.Fatalf("segment is %d bytes after replay (tracked %d), want %d", st.Size(), seg.diskBytes, wantSize)
			}
		})
	}
}

// Damage the disk did — a bad frame with good ones after it, or any
// damage to a segment that was sealed before the crash — is not a torn
// write: the frames after it are replayed and a copy of the file is kept.
func TestWAL_DamageBeforeTheTailKeepsTheRestAndACopy(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	batches := []arrow.RecordBatch{spanBatch(t, 10, start), spanBatch(t, 20, start), spanBatch(t, 30, start)}
	for name, c := range map[string]struct {
		damage func(path string, sizes []int)
		newest bool
		rows   int64
	}{
		"bit flip in the first frame":                  {func(p string, s []int) { flip(t, p, -int64(s[2]+s[1]+s[0]/2)) }, true, 50},
		"bit flip in the first frame, sealed segment":  {func(p string, s []int) { flip(t, p, -int64(s[2]+s[1]+s[0]/2)) }, false, 50},
		"torn tail of a sealed segment":                {func(p string, s []int) { truncate(t, p, -int64(s[2]/2)) }, false, 30},
		"impossible length in the middle, sealed file": {func(p string, s []int) { flip(t, p, -int64(s[2]+s[1]-1)) }, false, 40},
		"zeroed header in the middle, newest segment": {func(p string, s []int) {
			b := mustRead(t, p)
			copy(b[len(b)-s[2]-s[1]:], make([]byte, 8))
			os.WriteFile(p, b, 0o644)
		}, true, 40},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path, sizes := writeSegment(t, dir, batches)
			c.damage(path, sizes)
			before, _ := os.ReadFile(path)
			seg, err := readSegment(dir, 7, c.newest)
			if err != nil {
				t.Fatal(err)
			}
			if seg.rows != c.rows {
				t.Errorf("replayed %d rows, want %d", seg.rows, c.rows)
			}
			if kept := damagedCopies(t, path); len(kept) != 1 || !bytes.Equal(mustRead(t, kept[0]), before) {
				t.Errorf("copies of the damaged segment as it was: %v", kept)
			}
			if seqs, _ := listSegments(dir); len(seqs) != 1 {
				t.Errorf("segments listed after replay: %v, want the one", seqs)
			}
		})
	}
	// A sealed segment whose header is damaged is kept too.
	dir := t.TempDir()
	path, _ := writeSegment(t, dir, batches)
	flip(t, path, -int64(len(mustRead(t, path))-1))
	if seg, err := readSegment(dir, 7, false); err != nil || seg != nil {
		t.Fatalf("damaged header: %v %v", seg, err)
	}
	if kept := damagedCopies(t, path); len(kept) != 1 {
		t.Errorf("a sealed segment with a damaged header was not kept: %v", kept)
	}
	// Damaged again later, under the same number: kept apart.
	time.Sleep(time.Millisecond)
	readSegment(dir, 7, false)
	if kept := damagedCopies(t, path); len(kept) != 2 {
		t.Errorf("a second damage of a segment numbered alike: copies %v", kept)
	}
}

func damagedCopies(t *testing.T, path string) []string {
	m, err := filepath.Glob(path + ".damaged-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWAL_SegmentWithoutHeaderIsIgnored(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, segmentName(3)), []byte("STRA"), 0o644)
	seg, err := readSegment(dir, 3, true)
	if err != nil || seg != nil {
		t.Fatalf("torn header: %v, %v", seg, err)
	}
}

func TestWAL_FileKeysAreDeterministic(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	path, _ := writeSegment(t, dir, []arrow.RecordBatch{spanBatch(t, 5, start)})
	a, _ := readSegment(dir, 7, true)
	b, _ := readSegment(dir, 7, true)
	for pk := range a.parts {
		if a.fileKey(pk) != b.fileKey(pk) {
			t.Fatalf("replays of %s give keys %s and %s", path, a.fileKey(pk), b.fileKey(pk))
		}
	}
	_, other, _ := createSegment(dir, 8, time.Now())
	for pk := range a.parts {
		if other.fileKey(pk) == a.fileKey(pk) {
			t.Fatal("two segments share a file key")
		}
	}
}

func TestSplitByHour(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 59, 59, 990_000_000, time.UTC)
	rec := spanBatch(t, 30, start) // 10 ms in hour 10, 20 ms in hour 11
	defer rec.Release()
	parts, err := splitByHour(recordsTable, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].NumRows() != 10 || parts[1].NumRows() != 20 {
		t.Fatalf("split into %d parts", len(parts))
	}
	for _, p := range parts {
		p.Release()
	}
}

func FuzzReadSegment(f *testing.F) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	dir := f.TempDir()
	path, _ := writeSegment(f, dir, []arrow.RecordBatch{spanBatch(f, 3, start)})
	good, _ := os.ReadFile(path)
	f.Add(good[headerSize:])
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, segmentName(1))
		os.WriteFile(p, append(append([]byte{}, good[:headerSize]...), tail...), 0o644)
		seg, err := readSegment(dir, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		if seg != nil {
			st, _ := os.Stat(p)
			if st.Size() != seg.diskBytes || st.Size() > int64(headerSize+len(tail)) {
				t.Fatalf("size %d, tracked %d", st.Size(), seg.diskBytes)
			}
		}
	})
}

func truncate(t *testing.T, path string, delta int64) {
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()+delta); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, fromEnd int64) {
	b, _ := os.ReadFile(path)
	b[int64(len(b))+fromEnd] ^= 0x40
	os.WriteFile(path, b, 0o644)
}

func appendBytes(t *testing.T, path string, extra []byte) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(extra)
	f.Close()
}

package engine

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// A recycled buffer comes back zeroed over its whole capacity, whatever
// its last owner wrote, and growing within it keeps what was written.
func TestBufferPoolRecyclesZeroed(t *testing.T) {
	p := &bufferPool{}
	recycled := 0
	for range 100 {
		b := p.Allocate(5000)
		if len(b) != 5000 || cap(b) != 8192 {
			t.Fatalf("len %d cap %d, want 5000 and 8192", len(b), cap(b))
		}
		full := b[:cap(b)]
		for i := range full {
			full[i] = 0xff
		}
		p.Free(b)
		c := p.Allocate(6000)
		if len(c) != 6000 || !bytes.Equal(c[:cap(c)], make([]byte, cap(c))) {
			t.Fatal("a recycled buffer is not zeroed")
		}
		if &c[0] == &b[0] {
			recycled++ // sync.Pool may drop what it holds, so not always
		}
		copy(c, "abc")
		g := p.Reallocate(7000, c)
		if &g[0] != &c[0] || string(g[:3]) != "abc" {
			t.Fatal("growing within the capacity moved or lost the contents")
		}
		g = p.Reallocate(20000, g)
		if len(g) != 20000 || string(g[:3]) != "abc" || g[7000] != 0 {
			t.Fatal("growing past the capacity lost the contents or left garbage")
		}
		p.Free(g)
	}
	if recycled == 0 {
		t.Fatal("no buffer was recycled in 100 tries")
	}
}

// Builders on the pool, one record after another, each released before
// the next is built, keep their own values.
func TestBufferPoolBuildersKeepTheirValues(t *testing.T) {
	for round := range 50 {
		bld := array.NewStringBuilder(BufferPool)
		for i := range 3000 {
			if i%7 == 0 {
				bld.AppendNull()
				continue
			}
			bld.Append(string(rune('a' + (round+i)%26)))
		}
		arr := bld.NewStringArray()
		bld.Release()
		for i := range 3000 {
			want := string(rune('a' + (round+i)%26))
			if i%7 == 0 {
				if !arr.IsNull(i) {
					t.Fatalf("round %d row %d: not null", round, i)
				}
			} else if arr.IsNull(i) || arr.Value(i) != want {
				t.Fatalf("round %d row %d: %q, want %q", round, i, arr.Value(i), want)
			}
		}
		arr.Release()
	}
}

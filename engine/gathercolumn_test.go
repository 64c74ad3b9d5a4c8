package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/strata-db/strata/engine/schema"
)

// gather gives what Arrow's take over the concatenated batches gives, for
// every column type of the tables, from sliced batches with and without
// nulls.
func TestGatherMatchesTake(t *testing.T) {
	for _, tbl := range schema.Tables() {
		t.Run(tbl.Name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			mem := memory.DefaultAllocator
			var batches []arrow.RecordBatch
			for bi := range 5 {
				rb := array.NewRecordBuilder(mem, tbl.Schema)
				n := 20 + rng.IntN(100)
				for range n + 4 {
					for f, fb := range rb.Fields() {
						// Batch 1 has no nulls; in batch 2 every nullable
						// column is null.
						if tbl.Schema.Field(f).Nullable && (bi == 2 || bi != 1 && rng.IntN(3) == 0) {
							fb.AppendNull()
							continue
						}
						appendRandom(fb, rng)
					}
				}
				rec := rb.NewRecordBatch()
				rb.Release()
				batches = append(batches, rec.NewSlice(2, int64(n+2)))
				rec.Release()
			}
			var refs []rowRef
			for range 400 {
				b := rng.IntN(len(batches))
				refs = append(refs, rowRef{uint32(b), uint32(rng.IntN(int(batches[b].NumRows())))})
			}
			got, err := gather(tbl.Schema, batches, refs)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Release()
			for c, f := range tbl.Schema.Fields() {
				parts := make([]arrow.Array, len(batches))
				for i, b := range batches {
					parts[i] = b.Column(c)
				}
				want := takeRows(t, parts, refs)
				if !array.Equal(got.Column(c), want) {
					t.Errorf("column %s: got %v, want %v", f.Name, got.Column(c), want)
				}
				want.Release()
			}
		})
	}
}

func appendRandom(b array.Builder, rng *rand.Rand) {
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(fmt.Sprint("s", rng.IntN(50)))
	case *array.ExtensionBuilder:
		b.StorageBuilder().(*array.StringBuilder).Append(fmt.Sprintf(`{"k":%d}`, rng.IntN(50)))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(rng.Int64()))
	case *array.Int64Builder:
		b.Append(rng.Int64())
	case *array.Int32Builder:
		b.Append(rng.Int32())
	case *array.Float64Builder:
		b.Append(rng.Float64())
	case *array.BooleanBuilder:
		b.Append(rng.IntN(2) == 0)
	case *array.ListBuilder:
		b.Append(true)
		for range rng.IntN(3) {
			appendRandom(b.ValueBuilder(), rng)
		}
	default:
		panic(fmt.Sprintf("no random values for %T", b))
	}
}

func takeRows(t *testing.T, parts []arrow.Array, refs []rowRef) arrow.Array {
	whole, err := array.Concatenate(parts, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Release()
	starts := make([]int32, len(parts)+1)
	for i, p := range parts {
		starts[i+1] = starts[i] + int32(p.Len())
	}
	bld := array.NewInt32Builder(memory.DefaultAllocator)
	defer bld.Release()
	for _, r := range refs {
		bld.Append(starts[r.batch] + int32(r.row))
	}
	idx := bld.NewArray()
	defer idx.Release()
	out, err := compute.TakeArray(context.Background(), whole, idx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

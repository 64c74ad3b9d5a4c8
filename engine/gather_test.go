package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/strata-db/strata/engine/schema"
)

// sortedRows must give the order a stable sort by compareRows gives, nulls
// first, over batches that are slices of larger arrays.
func TestSortedRowsMatchesCompareRows(t *testing.T) {
	tbl := &schema.Table{
		Name: "t",
		Schema: arrow.NewSchema([]arrow.Field{
			{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "ts", Type: schema.Timestamp, Nullable: true},
			{Name: "x", Type: arrow.PrimitiveTypes.Int64},
		}, nil),
		SortColumns: []string{"a", "b", "ts"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	mem := memory.DefaultAllocator
	var batches []arrow.RecordBatch
	for bi := range 7 {
		rb := array.NewRecordBuilder(mem, tbl.Schema)
		n := 50 + rng.IntN(300)
		for i := range n + 5 {
			for f := range 2 {
				b := rb.Field(f).(*array.StringBuilder)
				switch v := rng.IntN(6); {
				case v == 0:
					b.AppendNull()
				case bi == 3 && f == 0:
					b.Append("same") // a batch of one value
				default:
					b.Append(fmt.Sprint("v", v, rng.IntN(2)))
				}
			}
			ts := rb.Field(2).(*array.TimestampBuilder)
			if bi%2 == 0 && rng.IntN(10) == 0 {
				ts.AppendNull()
			} else {
				ts.Append(arrow.Timestamp(rng.IntN(20)))
			}
			rb.Field(3).(*array.Int64Builder).Append(int64(i))
		}
		rec := rb.NewRecordBatch()
		rb.Release()
		batches = append(batches, rec.NewSlice(3, int64(n+3)))
		rec.Release()
	}
	got, err := sortedRows(tbl, batches)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]sortKey, len(batches))
	var want []rowRef
	for i, b := range batches {
		keys[i], _ = sortKeyOf(tbl, b)
		for r := range int(b.NumRows()) {
			want = append(want, rowRef{uint32(i), uint32(r)})
		}
	}
	slices.SortStableFunc(want, func(a, b rowRef) int {
		return compareRows(keys[a.batch], int(a.row), keys[b.batch], int(b.row))
	})
	if !slices.Equal(got, want) {
		t.Fatalf("order differs from a stable sort by compareRows")
	}
	// Sorted input is recognised as such.
	rec, err := gather(tbl.Schema, batches, got)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if again, err := sortedRows(tbl, []arrow.RecordBatch{rec}); err != nil || again != nil {
		t.Fatalf("sorted input: %v, %d refs", err, len(again))
	}
}

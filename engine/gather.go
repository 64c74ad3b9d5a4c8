package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/strata-db/strata/engine/schema"
)

// rowRef names one row of one of several batches.
type rowRef struct{ batch, row uint32 }

// sortKey holds the sort columns of one batch in the table's sort order;
// for each column k exactly one of strs[k] and ts[k] is set.
type sortKey struct {
	strs []*array.String
	ts   []*array.Timestamp
}

func sortKeyOf(t *schema.Table, b arrow.RecordBatch) (sortKey, error) {
	var k sortKey
	for _, name := range t.SortColumns {
		switch c := b.Column(t.Index(name)).(type) {
		case *array.String:
			k.strs, k.ts = append(k.strs, c), append(k.ts, nil)
		case *array.Timestamp:
			k.strs, k.ts = append(k.strs, nil), append(k.ts, c)
		default:
			return sortKey{}, fmt.Errorf("cannot sort on column %s of type %s", name, c.DataType())
		}
	}
	return k, nil
}

// compareRows orders row i of a's batch and row j of b's (nulls first).
func compareRows(a sortKey, i int, b sortKey, j int) int {
	for k := range a.strs {
		var c int
		if x, y := a.strs[k], b.strs[k]; x != nil {
			c = compareNullable(x.IsNull(i), y.IsNull(j), func() int { return cmp.Compare(x.Value(i), y.Value(j)) })
		} else {
			x, y := a.ts[k], b.ts[k]
			c = compareNullable(x.IsNull(i), y.IsNull(j), func() int { return cmp.Compare(x.Value(i), y.Value(j)) })
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// sortedRows returns the rows of batches in the table's sort order (stable,
// nulls first), or nil if they already are in order.
func sortedRows(t *schema.Table, batches []arrow.RecordBatch) ([]rowRef, error) {
	keys := make([]sortKey, len(batches))
	for i, b := range batches {
		var err error
		if keys[i], err = sortKeyOf(t, b); err != nil {
			return nil, err
		}
	}
	compare := func(a, b rowRef) int {
		return compareRows(keys[a.batch], int(a.row), keys[b.batch], int(b.row))
	}
	var refs []rowRef
	for bi, b := range batches {
		for r := range int(b.NumRows()) {
			refs = append(refs, rowRef{uint32(bi), uint32(r)})
		}
	}
	if slices.IsSortedFunc(refs, compare) {
		return nil, nil
	}
	slices.SortStableFunc(refs, compare)
	return refs, nil
}

func compareNullable(ni, nj bool, values func() int) int {
	switch {
	case ni && nj:
		return 0
	case ni:
		return -1
	case nj:
		return 1
	}
	return values()
}

// gather builds one record holding the given rows of batches, in order.
// Strings and fixed-width columns, the bulk of every table, are copied with
// exactly sized buffers; other types go through Arrow's take kernel.
func gather(s *arrow.Schema, batches []arrow.RecordBatch, refs []rowRef) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, s.NumFields())
	release := func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}
	parts := make([]arrow.Array, len(batches))
	for i, f := range s.Fields() {
		for b, rec := range batches {
			parts[b] = rec.Column(i)
		}
		c, err := gatherColumn(f.Type, parts, refs)
		if err != nil {
			release()
			return nil, fmt.Errorf("gather %s: %w", f.Name, err)
		}
		cols[i] = c
	}
	defer release()
	return array.NewRecordBatch(s, cols, int64(len(refs))), nil
}

func gatherColumn(dt arrow.DataType, parts []arrow.Array, refs []rowRef) (arrow.Array, error) {
	mem := memory.DefaultAllocator
	n := len(refs)
	nulls := 0
	for _, r := range refs {
		if parts[r.batch].IsNull(int(r.row)) {
			nulls++
		}
	}
	var validity *memory.Buffer
	if nulls > 0 {
		validity = memory.NewResizableBuffer(mem)
		validity.Resize(int(bitutil.BytesForBits(int64(n))))
		bits := validity.Bytes()
		for i := range bits {
			bits[i] = 0
		}
		for i, r := range refs {
			if parts[r.batch].IsValid(int(r.row)) {
				bitutil.SetBit(bits, i)
			}
		}
		defer validity.Release()
	}
	storage := dt
	if ext, ok := dt.(arrow.ExtensionType); ok {
		storage = ext.StorageType()
	}
	switch storage.(type) {
	case *arrow.StringType:
		strs := make([]*array.String, len(parts))
		for i, p := range parts {
			if ext, ok := p.(array.ExtensionArray); ok {
				p = ext.Storage()
			}
			strs[i] = p.(*array.String)
		}
		total := 0
		for _, r := range refs {
			total += strs[r.batch].ValueLen(int(r.row))
		}
		offsets := memory.NewResizableBuffer(mem)
		offsets.Resize((n + 1) * arrow.Int32SizeBytes)
		defer offsets.Release()
		data := memory.NewResizableBuffer(mem)
		data.Resize(total)
		defer data.Release()
		offs := arrow.Int32Traits.CastFromBytes(offsets.Bytes())
		out := data.Bytes()
		pos := 0
		for i, r := range refs {
			offs[i] = int32(pos)
			pos += copy(out[pos:], strs[r.batch].Value(int(r.row)))
		}
		offs[n] = int32(pos)
		d := array.NewData(storage, n, []*memory.Buffer{validity, offsets, data}, nil, nulls, 0)
		defer d.Release()
		return wrapExtension(dt, array.MakeFromData(d)), nil
	case arrow.FixedWidthDataType:
		if _, ok := storage.(*arrow.BooleanType); ok {
			break
		}
		width := storage.(arrow.FixedWidthDataType).BitWidth() / 8
		values := memory.NewResizableBuffer(mem)
		values.Resize(n * width)
		defer values.Release()
		out := values.Bytes()
		for i, r := range refs {
			d := parts[r.batch].Data()
			src := d.Buffers()[1].Bytes()[(d.Offset()+int(r.row))*width:]
			copy(out[i*width:(i+1)*width], src[:width])
		}
		d := array.NewData(storage, n, []*memory.Buffer{validity, values}, nil, nulls, 0)
		defer d.Release()
		return wrapExtension(dt, array.MakeFromData(d)), nil
	}
	// Booleans, lists and anything else: Arrow's take over the concatenation.
	whole, err := array.Concatenate(parts, mem)
	if err != nil {
		return nil, err
	}
	defer whole.Release()
	starts := make([]int32, len(parts))
	for i := 1; i < len(parts); i++ {
		starts[i] = starts[i-1] + int32(parts[i-1].Len())
	}
	bld := array.NewInt32Builder(mem)
	defer bld.Release()
	bld.Reserve(n)
	for _, r := range refs {
		bld.UnsafeAppend(starts[r.batch] + int32(r.row))
	}
	idx := bld.NewArray()
	defer idx.Release()
	return compute.TakeArray(context.Background(), whole, idx)
}

func wrapExtension(dt arrow.DataType, storage arrow.Array) arrow.Array {
	ext, ok := dt.(arrow.ExtensionType)
	if !ok {
		return storage
	}
	defer storage.Release()
	return array.NewExtensionArrayWithStorage(ext, storage)
}

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
// nulls first), or nil if they already are in order. Each sort column
// becomes integer keys, one per row — a string column the rank of each
// value among the column's distinct values, a timestamp column its value
// (after a null flag when it has nulls) — so that sorting compares integers
// only.
func sortedRows(t *schema.Table, batches []arrow.RecordBatch) ([]rowRef, error) {
	n := 0
	starts := make([]int, len(batches)) // position of each batch's first row
	for i, b := range batches {
		starts[i] = n
		n += int(b.NumRows())
	}
	// Row-major keys: one row's keys are adjacent.
	nk := 0
	for _, name := range t.SortColumns {
		nk++
		ci := t.Index(name)
		if _, ok := batches[0].Column(ci).(*array.Timestamp); ok && anyNulls(batches, ci) {
			nk++
		}
	}
	keys := make([]int64, n*nk)
	k := 0
	for _, name := range t.SortColumns {
		ci := t.Index(name)
		switch c := batches[0].Column(ci).(type) {
		case *array.String:
			stringRanks(batches, ci, keys[k:], nk)
			k++
		case *array.Timestamp:
			if anyNulls(batches, ci) {
				pos := k
				for _, b := range batches {
					ts := b.Column(ci).(*array.Timestamp)
					for i := range ts.Len() {
						if ts.IsValid(i) {
							keys[pos] = 1 // nulls first
						}
						pos += nk
					}
				}
				k++
			}
			pos := k
			for _, b := range batches {
				ts := b.Column(ci).(*array.Timestamp)
				for i, v := range ts.TimestampValues() {
					if ts.IsValid(i) {
						keys[pos] = int64(v)
					}
					pos += nk
				}
			}
			k++
		default:
			return nil, fmt.Errorf("cannot sort on column %s of type %s", name, c.DataType())
		}
	}
	// Rows compare by their keys, then by position: the order is stable.
	compareAt := func(a, b int) int {
		ka, kb := keys[a*nk:a*nk+nk], keys[b*nk:b*nk+nk]
		for k := range ka {
			if c := cmp.Compare(ka[k], kb[k]); c != 0 {
				return c
			}
		}
		return cmp.Compare(a, b)
	}
	sorted := true
	for i := 1; i < n && sorted; i++ {
		sorted = compareAt(i-1, i) < 0
	}
	if sorted {
		return nil, nil
	}
	refs := make([]rowRef, 0, n)
	for bi, b := range batches {
		for r := range int(b.NumRows()) {
			refs = append(refs, rowRef{uint32(bi), uint32(r)})
		}
	}
	slices.SortFunc(refs, func(a, b rowRef) int {
		return compareAt(starts[a.batch]+int(a.row), starts[b.batch]+int(b.row))
	})
	return refs, nil
}

func anyNulls(batches []arrow.RecordBatch, col int) bool {
	for _, b := range batches {
		if b.Column(col).NullN() > 0 {
			return true
		}
	}
	return false
}

// stringRanks sets keys[i*stride], for each row i of column col of
// batches, to 0 for a null and otherwise 1 + the rank of its value among
// the column's distinct values.
func stringRanks(batches []arrow.RecordBatch, col int, keys []int64, stride int) {
	ids := map[string]int64{} // value → 1 + order of first appearance
	var values []string
	pos := 0
	for _, b := range batches {
		s := b.Column(col).(*array.String)
		// Rows of one batch often repeat the previous row's value.
		prev, prevID := "", int64(0)
		for i := range s.Len() {
			if s.IsValid(i) {
				if v := s.Value(i); prevID == 0 || v != prev {
					id, ok := ids[v]
					if !ok {
						values = append(values, v)
						id = int64(len(values))
						ids[v] = id
					}
					prev, prevID = v, id
				}
				keys[pos] = prevID
			}
			pos += stride
		}
	}
	byValue := make([]int, len(values))
	for i := range byValue {
		byValue[i] = i
	}
	slices.SortFunc(byValue, func(a, b int) int { return cmp.Compare(values[a], values[b]) })
	rank := make([]int64, len(values)+1)
	for r, i := range byValue {
		rank[i+1] = int64(r) + 1
	}
	for pos := 0; pos < len(keys); pos += stride {
		keys[pos] = rank[keys[pos]]
	}
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
	mem := BufferPool
	n := len(refs)
	validity, nulls := gatherValidity(mem, parts, refs)
	if validity != nil {
		defer validity.Release()
	}
	storage := dt
	if ext, ok := dt.(arrow.ExtensionType); ok {
		storage = ext.StorageType()
	}
	switch storage.(type) {
	case *arrow.StringType:
		// Each part's offsets and the bytes they point into.
		offs := make([][]int32, len(parts))
		vals := make([][]byte, len(parts))
		for i, p := range parts {
			if ext, ok := p.(array.ExtensionArray); ok {
				p = ext.Storage()
			}
			s := p.(*array.String)
			offs[i], vals[i] = s.ValueOffsets(), s.ValueBytes()
		}
		total := 0
		for _, r := range refs {
			o := offs[r.batch]
			total += int(o[r.row+1] - o[r.row])
		}
		offsets := memory.NewResizableBuffer(mem)
		offsets.Resize((n + 1) * arrow.Int32SizeBytes)
		defer offsets.Release()
		data := memory.NewResizableBuffer(mem)
		data.Resize(total)
		defer data.Release()
		outOffs := arrow.Int32Traits.CastFromBytes(offsets.Bytes())
		out := data.Bytes()
		pos := 0
		for i, r := range refs {
			// ValueBytes starts at the part's first offset.
			o := offs[r.batch]
			outOffs[i] = int32(pos)
			pos += copy(out[pos:], vals[r.batch][o[r.row]-o[0]:o[r.row+1]-o[0]])
		}
		outOffs[n] = int32(pos)
		d := array.NewData(storage, n, []*memory.Buffer{validity, offsets, data}, nil, nulls, 0)
		defer d.Release()
		return wrapExtension(dt, array.MakeFromData(d)), nil
	case arrow.FixedWidthDataType:
		if _, ok := storage.(*arrow.BooleanType); ok {
			break
		}
		width := storage.(arrow.FixedWidthDataType).BitWidth() / 8
		srcs := make([][]byte, len(parts))
		for i, p := range parts {
			d := p.Data()
			srcs[i] = d.Buffers()[1].Bytes()[d.Offset()*width:]
		}
		values := memory.NewResizableBuffer(mem)
		values.Resize(n * width)
		defer values.Release()
		out := values.Bytes()
		switch width {
		case 8: // timestamps, int64, float64: copied as words
			gatherWords[uint64](out, srcs, refs)
		case 4:
			gatherWords[uint32](out, srcs, refs)
		default:
			for i, r := range refs {
				at := int(r.row) * width
				copy(out[i*width:(i+1)*width], srcs[r.batch][at:at+width])
			}
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

// gatherValidity returns the validity bitmap of the given rows of parts and
// their number of nulls, or nil when no part has a null.
func gatherValidity(mem memory.Allocator, parts []arrow.Array, refs []rowRef) (*memory.Buffer, int) {
	bitmaps := make([][]byte, len(parts)) // nil: no nulls
	offsets := make([]int, len(parts))
	for i, p := range parts {
		if p.NullN() > 0 {
			bitmaps[i], offsets[i] = p.NullBitmapBytes(), p.Data().Offset()
		}
	}
	if !slices.ContainsFunc(bitmaps, func(b []byte) bool { return b != nil }) {
		return nil, 0
	}
	validity := memory.NewResizableBuffer(mem)
	validity.Resize(int(bitutil.BytesForBits(int64(len(refs)))))
	bits := validity.Bytes()
	clear(bits)
	nulls := 0
	for i, r := range refs {
		if bm := bitmaps[r.batch]; bm == nil || bitutil.BitIsSet(bm, offsets[r.batch]+int(r.row)) {
			bitutil.SetBit(bits, i)
		} else {
			nulls++
		}
	}
	return validity, nulls
}

// gatherWords copies the fixed-width values refs name from srcs to out,
// a word at a time.
func gatherWords[W uint32 | uint64](out []byte, srcs [][]byte, refs []rowRef) {
	words := arrow.GetData[W](out)
	src := make([][]W, len(srcs))
	for i, s := range srcs {
		src[i] = arrow.GetData[W](s)
	}
	for i, r := range refs {
		words[i] = src[r.batch][r.row]
	}
}

func wrapExtension(dt arrow.DataType, storage arrow.Array) arrow.Array {
	ext, ok := dt.(arrow.ExtensionType)
	if !ok {
		return storage
	}
	defer storage.Release()
	return array.NewExtensionArrayWithStorage(ext, storage)
}

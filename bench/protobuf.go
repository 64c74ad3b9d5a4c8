package bench

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The generator encodes OTLP protobuf by hand so that it knows where every
// id and timestamp sits in the bytes. A request is encoded once as a
// template; sending it again only copies the bytes and writes new ids and
// times at those offsets, which is what lets one core produce hundreds of
// thousands of spans per second.

type patchKind uint8

const (
	patchTrace patchKind = iota // 16 bytes: the trace id of trace ref
	patchSpan                   // 8 bytes: the span id of span ref
	patchTime                   // fixed64: send time + rel nanoseconds
)

type patch struct {
	off  int
	kind patchKind
	ref  int   // trace or span index
	rel  int64 // for patchTime
}

// msg is a protobuf message under construction with its patch points.
type msg struct {
	b       []byte
	patches []patch
}

func (m *msg) str(num protowire.Number, s string) {
	m.b = protowire.AppendTag(m.b, num, protowire.BytesType)
	m.b = protowire.AppendString(m.b, s)
}

func (m *msg) varint(num protowire.Number, v uint64) {
	m.b = protowire.AppendTag(m.b, num, protowire.VarintType)
	m.b = protowire.AppendVarint(m.b, v)
}

func (m *msg) fixed64(num protowire.Number, v uint64) {
	m.b = protowire.AppendTag(m.b, num, protowire.Fixed64Type)
	m.b = protowire.AppendFixed64(m.b, v)
}

func (m *msg) double(num protowire.Number, v float64) { m.fixed64(num, math.Float64bits(v)) }

// id writes a placeholder id of n bytes to be patched at send time.
func (m *msg) id(num protowire.Number, n int, kind patchKind, ref int) {
	m.b = protowire.AppendTag(m.b, num, protowire.BytesType)
	m.b = protowire.AppendVarint(m.b, uint64(n))
	m.patches = append(m.patches, patch{off: len(m.b), kind: kind, ref: ref})
	m.b = append(m.b, make([]byte, n)...)
}

// time writes a timestamp patched to send time + rel.
func (m *msg) time(num protowire.Number, rel int64) {
	m.b = protowire.AppendTag(m.b, num, protowire.Fixed64Type)
	m.patches = append(m.patches, patch{off: len(m.b), kind: patchTime, rel: rel})
	m.b = protowire.AppendFixed64(m.b, 0)
}

// embed appends inner as a length-delimited field, carrying its patches.
func (m *msg) embed(num protowire.Number, inner *msg) {
	m.b = protowire.AppendTag(m.b, num, protowire.BytesType)
	m.b = protowire.AppendVarint(m.b, uint64(len(inner.b)))
	base := len(m.b)
	m.b = append(m.b, inner.b...)
	for _, p := range inner.patches {
		p.off += base
		m.patches = append(m.patches, p)
	}
}

// attribute values, as OTLP AnyValue.
type value struct {
	kind uint8 // 's', 'i', 'd', 'b', 'a' (array of strings)
	s    string
	i    int64
	d    float64
	arr  []string
}

func (m *msg) keyValue(num protowire.Number, key string, v value) {
	var av msg
	switch v.kind {
	case 's':
		av.str(1, v.s)
	case 'b':
		b := uint64(0)
		if v.i != 0 {
			b = 1
		}
		av.varint(2, b)
	case 'i':
		av.varint(3, uint64(v.i))
	case 'd':
		av.double(4, v.d)
	case 'a':
		var arr msg
		for _, s := range v.arr {
			var e msg
			e.str(1, s)
			arr.embed(1, &e)
		}
		av.embed(5, &arr)
	}
	var kv msg
	kv.str(1, key)
	kv.embed(2, &av)
	m.embed(num, &kv)
}

// fill copies a template into dst and writes fresh ids and times. traceIDs
// and spanIDs are indexed by the patches' refs.
func fill(dst []byte, t *template, now int64, traceIDs [][16]byte, spanIDs [][8]byte) []byte {
	dst = append(dst[:0], t.body...)
	for _, p := range t.patches {
		switch p.kind {
		case patchTrace:
			copy(dst[p.off:p.off+16], traceIDs[p.ref][:])
		case patchSpan:
			copy(dst[p.off:p.off+8], spanIDs[p.ref][:])
		case patchTime:
			binary.LittleEndian.PutUint64(dst[p.off:p.off+8], uint64(now+p.rel))
		}
	}
	return dst
}

func protowireNum(n int) protowire.Number { return protowire.Number(n) }

// appendPacked appends a packed repeated fixed-width field.
func appendPacked(b []byte, num protowire.Number, packed []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, packed)
}

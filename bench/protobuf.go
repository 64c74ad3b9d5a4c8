package bench

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// The generator encodes OTLP protobuf by hand so that it knows where every
// id and timestamp sits in the bytes. A request is encoded once as a
// template; sending it again only copies the bytes and writes new ids and
// times at those offsets, which is what lets one core produce hundreds of
// thousands of spans per second.

type patchKind uint8

const (
	patchTrace  patchKind = iota // 16 bytes: the trace id of trace ref
	patchSpan                    // 8 bytes: the span id of span ref
	patchTime                    // fixed64: send time + rel nanoseconds
	patchDigits                  // ref decimal digits: a fresh value below rel
	patchDouble                  // fixed64 double: a fresh value below rel, in hundredths
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

// digits writes a string field of a prefix and width digits, the digits
// drawn afresh below card on every send, so values vary like real data.
func (m *msg) digits(num protowire.Number, prefix string, width int, card int) {
	m.b = protowire.AppendTag(m.b, num, protowire.BytesType)
	m.b = protowire.AppendVarint(m.b, uint64(len(prefix)+width))
	m.b = append(m.b, prefix...)
	m.patches = append(m.patches, patch{off: len(m.b), kind: patchDigits, ref: width, rel: int64(card)})
	m.b = append(m.b, strings.Repeat("0", width)...)
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
	kind uint8 // 's', 'i', 'd', 'b', 'a' (array of strings), 'v' (varying digits), 'f' (varying double)
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
	case 'v': // s is the prefix, i the digits, d the cardinality
		av.digits(1, v.s, int(v.i), int(v.d))
	case 'f': // d is the cardinality, in hundredths
		av.b = protowire.AppendTag(av.b, 4, protowire.Fixed64Type)
		av.patches = append(av.patches, patch{off: len(av.b), kind: patchDouble, rel: int64(v.d)})
		av.b = protowire.AppendFixed64(av.b, 0)
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
func fill(dst []byte, t *template, now int64, traceIDs [][16]byte, spanIDs [][8]byte, rng *rand.Rand) []byte {
	dst = append(dst[:0], t.body...)
	for _, p := range t.patches {
		switch p.kind {
		case patchTrace:
			copy(dst[p.off:p.off+16], traceIDs[p.ref][:])
		case patchSpan:
			copy(dst[p.off:p.off+8], spanIDs[p.ref][:])
		case patchTime:
			binary.LittleEndian.PutUint64(dst[p.off:p.off+8], uint64(now+p.rel))
		case patchDigits:
			v := rng.Uint64N(uint64(p.rel))
			for i := p.off + p.ref - 1; i >= p.off; i-- {
				dst[i] = byte('0' + v%10)
				v /= 10
			}
		case patchDouble:
			binary.LittleEndian.PutUint64(dst[p.off:p.off+8], math.Float64bits(float64(rng.Uint64N(uint64(p.rel)))/100))
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

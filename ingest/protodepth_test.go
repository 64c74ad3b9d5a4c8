package ingest

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// wrap nests leaf in length-delimited fields, outermost first, writing
// outside in so that deep nesting costs linear time.
func wrap(leaf []byte, fields ...protowire.Number) []byte {
	sizes := make([]int, len(fields)+1)
	sizes[len(fields)] = len(leaf)
	for i := len(fields) - 1; i >= 0; i-- {
		sizes[i] = protowire.SizeTag(fields[i]) + protowire.SizeBytes(sizes[i+1])
	}
	b := make([]byte, 0, sizes[0])
	for i, f := range fields {
		b = protowire.AppendTag(b, f, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizes[i+1]))
	}
	return append(b, leaf...)
}

// arrays is the field path of depth arrays within arrays from a KeyValue's
// value down (AnyValue.array_value = 5, ArrayValue.values = 1).
func arrays(depth int) []protowire.Number {
	path := []protowire.Number{2} // KeyValue.value
	for range depth {
		path = append(path, 5, 1)
	}
	return path
}

// Every place OTLP carries attributes (or a log body) is walked, including
// the deprecated instrumentation-library lists pdata still decodes.
func TestCheckProtoDepth_FollowsEveryAttributePath(t *testing.T) {
	leaf := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "x")
	paths := map[string]struct {
		top    otlpMsg
		prefix []protowire.Number
	}{
		"span attributes":                    {mTraces, []protowire.Number{1, 2, 2, 9}},
		"event attributes":                   {mTraces, []protowire.Number{1, 2, 2, 11, 3}},
		"link attributes":                    {mTraces, []protowire.Number{1, 2, 2, 13, 4}},
		"resource attributes":                {mTraces, []protowire.Number{1, 1, 1}},
		"scope attributes":                   {mLogs, []protowire.Number{1, 2, 1, 3}},
		"spans in the deprecated field 1000": {mTraces, []protowire.Number{1, 1000, 2, 9}},
		"log attributes":                     {mLogs, []protowire.Number{1, 2, 2, 6}},
		"histogram exemplar attributes":      {mMetrics, []protowire.Number{1, 2, 2, 9, 1, 8, 7}},
		"exponential histogram attributes":   {mMetrics, []protowire.Number{1, 2, 2, 10, 1, 1}},
	}
	for name, p := range paths {
		deep := wrap(leaf, append(append([]protowire.Number{}, p.prefix...), arrays(20_000)...)...)
		if err := checkProtoDepth(deep, p.top); err == nil {
			t.Errorf("%s: 20,000 levels passed", name)
		}
		shallow := wrap(leaf, append(append([]protowire.Number{}, p.prefix...), arrays(30)...)...)
		if err := checkProtoDepth(shallow, p.top); err != nil {
			t.Errorf("%s: 30 levels refused: %v", name, err)
		}
	}
	// A group (which the decoder skips) in front must not end the walk.
	group := protowire.AppendTag(nil, 15, protowire.StartGroupType)
	group = protowire.AppendTag(group, 15, protowire.EndGroupType)
	grouped := append(group, wrap(leaf, append([]protowire.Number{1, 1, 1}, arrays(20_000)...)...)...)
	if err := checkProtoDepth(grouped, mTraces); err == nil {
		t.Error("a group in front: 20,000 levels passed")
	}
	// A log body is an AnyValue itself.
	body := wrap(leaf, append([]protowire.Number{1, 2, 2, 5}, arrays(20_000)[1:]...)...)
	if err := checkProtoDepth(body, mLogs); err == nil {
		t.Error("log body: 20,000 levels passed")
	}
}

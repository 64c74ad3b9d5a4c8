package ingest

import (
	"bytes"
	"runtime"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
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
		if _, err := checkProto(deep, p.top); err == nil {
			t.Errorf("%s: 20,000 levels passed", name)
		}
		shallow := wrap(leaf, append(append([]protowire.Number{}, p.prefix...), arrays(30)...)...)
		if _, err := checkProto(shallow, p.top); err != nil {
			t.Errorf("%s: 30 levels refused: %v", name, err)
		}
	}
	// A group (which the decoder skips) in front must not end the walk.
	group := protowire.AppendTag(nil, 15, protowire.StartGroupType)
	group = protowire.AppendTag(group, 15, protowire.EndGroupType)
	grouped := append(group, wrap(leaf, append([]protowire.Number{1, 1, 1}, arrays(20_000)...)...)...)
	if _, err := checkProto(grouped, mTraces); err == nil {
		t.Error("a group in front: 20,000 levels passed")
	}
	// A log body is an AnyValue itself.
	body := wrap(leaf, append([]protowire.Number{1, 2, 2, 5}, arrays(20_000)[1:]...)...)
	if _, err := checkProto(body, mLogs); err == nil {
		t.Error("log body: 20,000 levels passed")
	}
}

// emptyMessages is n empty messages of field num, wrapped in path.
func emptyMessages(n int, num protowire.Number, inner []byte, path ...protowire.Number) []byte {
	one := protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
	return wrap(bytes.Repeat(one, n), path...)
}

func heapInUse() uint64 {
	// Twice: what sync.Pools hold (frame and Arrow buffers of earlier
	// tests) survives one collection and would be freed mid-measurement.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// What the walk counts for a body covers what pdata's decoder allocates
// for it, for every message type, without counting more than twice that:
// bodies of empty messages, the most memory per byte a body can take.
func TestCheckProto_CountsWhatDecodingAllocates(t *testing.T) {
	const n = 100_000
	empty := func(num protowire.Number) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), nil)
	}
	traces := func(b []byte) (any, error) { r := ptraceotlp.NewExportRequest(); return r, r.UnmarshalProto(b) }
	logs := func(b []byte) (any, error) { r := plogotlp.NewExportRequest(); return r, r.UnmarshalProto(b) }
	metrics := func(b []byte) (any, error) { r := pmetricotlp.NewExportRequest(); return r, r.UnmarshalProto(b) }
	cases := []struct {
		name   string
		top    otlpMsg
		decode func([]byte) (any, error)
		body   []byte
	}{
		{"resource spans", mTraces, traces, emptyMessages(n, 1, empty(1))},
		{"scope spans", mTraces, traces, emptyMessages(n, 2, empty(1), 1)},
		{"spans", mTraces, traces, emptyMessages(n, 2, nil, 1, 2)},
		{"events", mTraces, traces, emptyMessages(n, 11, nil, 1, 2, 2)},
		{"links", mTraces, traces, emptyMessages(n, 13, nil, 1, 2, 2)},
		{"attributes", mTraces, traces, emptyMessages(n, 9, empty(2), 1, 2, 2)},
		{"array values", mTraces, traces, emptyMessages(n, 1, nil, 1, 2, 2, 9, 2, 5)},
		{"arrays in arrays", mTraces, traces, emptyMessages(n, 1, empty(5), 1, 2, 2, 9, 2, 5)},
		{"maps in arrays", mTraces, traces, emptyMessages(n, 1, empty(6), 1, 2, 2, 9, 2, 5)},
		{"map entries", mTraces, traces, emptyMessages(n, 1, nil, 1, 2, 2, 9, 2, 6)},
		{"resource logs", mLogs, logs, emptyMessages(n, 1, nil)},
		{"log records with bodies", mLogs, logs, emptyMessages(n, 2, empty(5), 1, 2)},
		{"resource metrics", mMetrics, metrics, emptyMessages(n, 1, nil)},
		{"scope metrics", mMetrics, metrics, emptyMessages(n, 2, nil, 1)},
		{"gauges", mMetrics, metrics, emptyMessages(n, 2, empty(5), 1, 2)},
		{"number points", mMetrics, metrics, emptyMessages(n, 1, nil, 1, 2, 2, 5)},
		{"histogram points", mMetrics, metrics, emptyMessages(n, 1, nil, 1, 2, 2, 9)},
		{"exponential histogram points", mMetrics, metrics, emptyMessages(n, 1, nil, 1, 2, 2, 10)},
		{"summary points", mMetrics, metrics, emptyMessages(n, 1, nil, 1, 2, 2, 11)},
		{"quantiles", mMetrics, metrics, emptyMessages(n, 6, nil, 1, 2, 2, 11, 1)},
		{"exemplars", mMetrics, metrics, emptyMessages(n, 5, nil, 1, 2, 2, 5, 1)},
	}
	for _, c := range cases {
		counted, err := checkProto(c.body, c.top)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		before := heapInUse()
		req, err := c.decode(c.body)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		took := int64(heapInUse() - before)
		runtime.KeepAlive(req)
		if counted < took || counted > 2*took {
			t.Errorf("%s: a %d-byte body counted as %d bytes decoded, took %d", c.name, len(c.body), counted, took)
		}
	}
}

package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Workload describes synthetic telemetry. The same Seed gives the same
// requests (up to ids and times, which are fresh on every send).
type Workload struct {
	Seed uint64
	// Style is "realistic" (several services, 10–20 attributes of mixed
	// types, exceptions with stack traces) or "telemetrygen" (what the
	// OpenTelemetry Collector's telemetrygen sends: two small spans per
	// trace, two attributes each).
	Style             string
	Services          int     // distinct services
	Operations        int     // distinct operations per service
	Depth             int     // levels of a trace below the root
	FanOut            int     // most children a span has
	Attributes        int     // attributes per span, besides the semantic ones
	Cardinality       int     // distinct values per custom attribute
	ErrorRate         float64 // fraction of traces that fail with an exception
	LogsPerSpan       float64 // log records per span (0 for none)
	MetricsPerService int     // metric series per service per request (0 for none)
	SpansPerRequest   int     // about this many spans per export request
}

// DefaultWorkload is the realistic workload of the benchmarks.
func DefaultWorkload() Workload {
	return Workload{Seed: 1, Style: "realistic", Services: 8, Operations: 12, Depth: 3, FanOut: 3,
		Attributes: 8, Cardinality: 200, ErrorRate: 0.02, SpansPerRequest: 500}
}

// Validate reports settings that cannot make a workload.
func (w Workload) Validate() error {
	switch {
	case w.Style != "realistic" && w.Style != "telemetrygen":
		return fmt.Errorf("workload style %q: want realistic or telemetrygen", w.Style)
	case w.Services < 1 || w.Operations < 1:
		return fmt.Errorf("services and operations must be at least 1")
	case w.Depth < 0 || w.FanOut < 0 || w.Attributes < 0 || w.Cardinality < 1:
		return fmt.Errorf("depth, fan-out and attributes must not be negative; cardinality at least 1")
	case w.ErrorRate < 0 || w.ErrorRate > 1:
		return fmt.Errorf("error rate %v: want a fraction between 0 and 1", w.ErrorRate)
	case w.LogsPerSpan < 0 || w.MetricsPerService < 0:
		return fmt.Errorf("logs per span and metrics per service must not be negative")
	case w.SpansPerRequest < 1:
		return fmt.Errorf("spans per request must be at least 1")
	}
	return nil
}

// template is one encoded request and where to patch it.
type template struct {
	body    []byte
	patches []patch
	traces  int // distinct trace ids
	spans   int // distinct span ids (and the number of spans)
	logs    int
	points  int
}

// Generator makes export requests from a workload.
type Generator struct {
	w                     Workload
	traces, logs, metrics []*template
}

const templatesPerSignal = 16

// NewGenerator encodes the templates of w.
func NewGenerator(w Workload) (*Generator, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{w: w}
	rng := rand.New(rand.NewPCG(w.Seed, w.Seed^0x5eed))
	for range templatesPerSignal {
		b := newBuilder(w, rng)
		spans, traces := b.traceShape()
		g.traces = append(g.traces, b.traceRequest(spans, traces))
		if w.LogsPerSpan > 0 {
			g.logs = append(g.logs, b.logRequest(spans, traces))
		}
		if w.MetricsPerService > 0 {
			g.metrics = append(g.metrics, b.metricRequest())
		}
	}
	return g, nil
}

// Request is one encoded export ready to send.
type Request struct {
	Signal string // "traces", "logs" or "metrics"
	Body   []byte
	Items  int // spans, log records or data points
}

// Filler fills requests for one sending goroutine; it is not safe for
// concurrent use, but many Fillers can share a Generator.
type Filler struct {
	g        *Generator
	rng      *rand.Rand
	traceIDs [][16]byte
	spanIDs  [][8]byte
}

// NewFiller returns a filler with its own random stream.
func (g *Generator) NewFiller(stream uint64) *Filler {
	return &Filler{g: g, rng: rand.New(rand.NewPCG(g.w.Seed+stream, stream))}
}

// Next returns the next requests to send: a trace export, and log and
// metric exports if the workload has them. Bodies are written into bufs,
// which are reused across calls.
func (f *Filler) Next(bufs *[3][]byte, now time.Time) []Request {
	k := f.rng.IntN(len(f.g.traces))
	t := f.g.traces[k]
	f.ids(t)
	ns := now.UnixNano()
	bufs[0] = fill(bufs[0], t, ns, f.traceIDs, f.spanIDs, f.rng)
	out := []Request{{Signal: "traces", Body: bufs[0], Items: t.spans}}
	if len(f.g.logs) > 0 {
		// Logs refer to the spans of the trace request just made.
		l := f.g.logs[k]
		bufs[1] = fill(bufs[1], l, ns, f.traceIDs, f.spanIDs, f.rng)
		out = append(out, Request{Signal: "logs", Body: bufs[1], Items: l.logs})
	}
	if len(f.g.metrics) > 0 {
		m := f.g.metrics[f.rng.IntN(len(f.g.metrics))]
		bufs[2] = fill(bufs[2], m, ns, f.traceIDs, f.spanIDs, f.rng)
		out = append(out, Request{Signal: "metrics", Body: bufs[2], Items: m.points})
	}
	return out
}

// ids draws fresh trace ids and unique span ids for a template.
func (f *Filler) ids(t *template) {
	for len(f.traceIDs) < t.traces {
		f.traceIDs = append(f.traceIDs, [16]byte{})
	}
	for len(f.spanIDs) < t.spans {
		f.spanIDs = append(f.spanIDs, [8]byte{})
	}
	for i := range t.traces {
		binary.BigEndian.PutUint64(f.traceIDs[i][:8], f.rng.Uint64())
		binary.BigEndian.PutUint64(f.traceIDs[i][8:], f.rng.Uint64()|1)
	}
	// Random like real SDKs' ids (a collision is a 1 in 2^64 event per pair),
	// so storage figures are not flattered by sequential ids.
	for i := range t.spans {
		binary.BigEndian.PutUint64(f.spanIDs[i][:], f.rng.Uint64()|1)
	}
}

// builder draws one template's content from the workload's random stream.
type builder struct {
	w   Workload
	rng *rand.Rand
}

func newBuilder(w Workload, rng *rand.Rand) *builder { return &builder{w: w, rng: rng} }

type genSpan struct {
	trace, id, parent int // parent -1 for a root
	service, op       int
	kind              uint64
	start, end        int64 // ns relative to send time (negative: in the past)
	err               bool
}

// traceShape draws the spans of traces until about SpansPerRequest.
func (b *builder) traceShape() (spans []genSpan, traces int) {
	for len(spans) < b.w.SpansPerRequest {
		if b.w.Style == "telemetrygen" {
			dur := int64(123 * time.Microsecond)
			root := len(spans)
			spans = append(spans,
				genSpan{trace: traces, id: root, parent: -1, kind: 3, start: -dur - 1000, end: -1000},
				genSpan{trace: traces, id: root + 1, parent: root, kind: 2, start: -dur - 1000, end: -1000})
			traces++
			continue
		}
		failed := b.rng.Float64() < b.w.ErrorRate
		svc := b.rng.IntN(b.w.Services)
		rootDur := b.duration(svc, 0) * 4
		start := -rootDur - int64(b.rng.IntN(50))*int64(time.Millisecond)
		spans = b.subtree(spans, traces, -1, svc, b.rng.IntN(b.w.Operations), 2, start, rootDur, 0, failed)
		traces++
	}
	return spans, traces
}

func (b *builder) duration(svc, op int) int64 {
	// Log-normal around a per-operation median of 1–40 ms.
	median := float64(1+((svc*7+op*13)%40)) * 1e6
	return int64(median * math.Exp(0.8*b.rng.NormFloat64()))
}

func (b *builder) subtree(spans []genSpan, trace, parent, svc, op int, kind uint64, start, dur int64, depth int, failed bool) []genSpan {
	id := len(spans)
	spans = append(spans, genSpan{trace: trace, id: id, parent: parent, service: svc, op: op, kind: kind,
		start: start, end: start + dur, err: failed && depth == 0})
	if depth >= b.w.Depth || b.w.FanOut == 0 {
		return spans
	}
	children := b.rng.IntN(b.w.FanOut + 1)
	at := start + dur/20
	for c := range children {
		childDur := max(dur/int64(children+2), 10_000)
		childSvc := b.rng.IntN(b.w.Services)
		childFailed := failed && c == children-1
		spans = b.subtree(spans, trace, id, childSvc, b.rng.IntN(b.w.Operations), []uint64{3, 1, 2}[c%3], at, childDur, depth+1, childFailed)
		at += childDur + childDur/10
	}
	return spans
}

var (
	methods   = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	dbSystems = []string{"postgresql", "redis", "mysql"}
	errTypes  = []string{"TimeoutError", "ConnectionResetError", "ValueError", "KeyError", "PermissionDenied"}
)

func serviceName(i int) string {
	return fmt.Sprintf("svc-%s", []string{"checkout", "cart", "payment", "catalog", "auth", "search", "shipping", "email", "ads", "recs", "currency", "frontend"}[i%12]) + suffix(i, 12)
}

func suffix(i, n int) string {
	if i < n {
		return ""
	}
	return fmt.Sprintf("-%d", i/n)
}

func route(svc, op int) string {
	return fmt.Sprintf("/api/v%d/%s/%s/{id}", 1+op%2, strings.TrimPrefix(serviceName(svc), "svc-"), []string{"items", "orders", "users", "sessions", "prices", "stock", "reviews", "carts"}[op%8]) + suffix(op, 8)
}

func stackTrace(rng *rand.Rand, typ string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Traceback (most recent call last):\n")
	for i := range 8 + rng.IntN(8) {
		fmt.Fprintf(&b, "  File \"/app/services/%s/handler_%d.py\", line %d, in step_%d\n    result = await self.call_%d(request, timeout=%d)\n",
			[]string{"orders", "billing", "inventory"}[i%3], i, 10+rng.IntN(400), i, i, 1+rng.IntN(30))
	}
	fmt.Fprintf(&b, "%s: upstream call failed after %d retries", typ, rng.IntN(4))
	return b.String()
}

// resource encodes the resource of a service.
func (b *builder) resource(svc int) *msg {
	var r msg
	if b.w.Style == "telemetrygen" {
		r.keyValue(1, "service.name", value{kind: 's', s: "telemetrygen"})
		return &r
	}
	r.keyValue(1, "service.name", value{kind: 's', s: serviceName(svc)})
	r.keyValue(1, "service.version", value{kind: 's', s: fmt.Sprintf("2.%d.%d", svc%5, svc%3)})
	r.keyValue(1, "service.instance.id", value{kind: 's', s: fmt.Sprintf("%s-7d9f%04x", serviceName(svc), svc*2654435761%65536)})
	r.keyValue(1, "deployment.environment.name", value{kind: 's', s: "production"})
	r.keyValue(1, "host.name", value{kind: 's', s: fmt.Sprintf("node-%02d", svc%16)})
	r.keyValue(1, "k8s.pod.name", value{kind: 's', s: fmt.Sprintf("%s-5c8d%03x", serviceName(svc), svc*131%4096)})
	r.keyValue(1, "cloud.region", value{kind: 's', s: "eu-west-1"})
	r.keyValue(1, "process.pid", value{kind: 'i', i: int64(1000 + svc*17)})
	r.keyValue(1, "telemetry.sdk.name", value{kind: 's', s: "opentelemetry"})
	r.keyValue(1, "telemetry.sdk.language", value{kind: 's', s: []string{"python", "go", "java", "nodejs"}[svc%4]})
	r.keyValue(1, "telemetry.sdk.version", value{kind: 's', s: "1.38.0"})
	return &r
}

func (b *builder) span(s genSpan) *msg {
	var m msg
	m.id(1, 16, patchTrace, s.trace)
	m.id(2, 8, patchSpan, s.id)
	if s.parent >= 0 {
		m.id(4, 8, patchSpan, s.parent)
	}
	if b.w.Style == "telemetrygen" {
		if s.parent < 0 {
			m.str(5, "lets-go")
		} else {
			m.str(5, "okey-dokey-0")
		}
		m.varint(6, s.kind)
		m.time(7, s.start)
		m.time(8, s.end)
		m.keyValue(9, "net.peer.ip", value{kind: 's', s: "1.2.3.4"})
		peer := "telemetrygen-server"
		if s.parent >= 0 {
			peer = "telemetrygen-client"
		}
		m.keyValue(9, "peer.service", value{kind: 's', s: peer})
		var st msg
		m.embed(15, &st)
		return &m
	}
	method := methods[(s.service+s.op)%len(methods)]
	r := route(s.service, s.op)
	m.str(5, method+" "+r)
	m.varint(6, s.kind)
	m.time(7, s.start)
	m.time(8, s.end)
	status := 200
	if s.err {
		status = 500
	}
	m.keyValue(9, "http.request.method", value{kind: 's', s: method})
	m.keyValue(9, "http.route", value{kind: 's', s: r})
	m.keyValue(9, "http.response.status_code", value{kind: 'i', i: int64(status)})
	m.keyValue(9, "url.full", value{kind: 'v', s: fmt.Sprintf("https://%s.internal%s", strings.TrimPrefix(serviceName(s.service), "svc-"),
		strings.Replace(r, "{id}", "", 1)), i: 6, d: 1e6})
	m.keyValue(9, "server.address", value{kind: 's', s: serviceName(s.service) + ".internal"})
	m.keyValue(9, "enduser.id", value{kind: 'v', s: "user-", i: 5, d: 50000})
	if s.kind == 3 {
		m.keyValue(9, "db.system.name", value{kind: 's', s: dbSystems[s.op%len(dbSystems)]})
		m.keyValue(9, "db.operation.name", value{kind: 's', s: []string{"SELECT", "INSERT", "UPDATE"}[s.op%3]})
	}
	for a := range b.w.Attributes {
		key := fmt.Sprintf("app.attr_%d", a)
		switch a % 4 {
		case 0:
			m.keyValue(9, key, value{kind: 'v', s: "value-", i: int64(len(fmt.Sprint(b.w.Cardinality - 1))), d: float64(b.w.Cardinality)})
		case 1:
			m.keyValue(9, key, value{kind: 'i', i: int64(b.rng.IntN(b.w.Cardinality))})
		case 2:
			m.keyValue(9, key, value{kind: 'f', d: float64(b.w.Cardinality * 100)})
		case 3:
			m.keyValue(9, key, value{kind: 'b', i: int64(b.rng.IntN(2))})
		}
	}
	var st msg
	if s.err {
		typ := errTypes[b.rng.IntN(len(errTypes))]
		var ev msg
		ev.time(1, s.end-1000)
		ev.str(2, "exception")
		ev.keyValue(3, "exception.type", value{kind: 's', s: typ})
		ev.keyValue(3, "exception.message", value{kind: 's', s: fmt.Sprintf("request %d failed: upstream returned 503", b.rng.IntN(1e6))})
		ev.keyValue(3, "exception.stacktrace", value{kind: 's', s: stackTrace(b.rng, typ)})
		m.embed(11, &ev)
		st.str(2, typ)
		st.varint(3, 2)
	}
	m.embed(15, &st)
	return &m
}

// traceRequest encodes an ExportTraceServiceRequest, spans grouped by service.
func (b *builder) traceRequest(spans []genSpan, traces int) *template {
	bySvc := map[int][]genSpan{}
	for _, s := range spans {
		bySvc[s.service] = append(bySvc[s.service], s)
	}
	var req msg
	for _, svc := range sortedKeys(bySvc) {
		var ss msg
		var scope msg
		scope.str(1, "io.opentelemetry.contrib.instrumentation")
		scope.str(2, "0.54b0")
		ss.embed(1, &scope)
		for _, s := range bySvc[svc] {
			ss.embed(2, b.span(s))
		}
		var rs msg
		rs.embed(1, b.resource(svc))
		rs.embed(2, &ss)
		req.embed(1, &rs)
	}
	return &template{body: req.b, patches: req.patches, traces: traces, spans: len(spans)}
}

// logRequest encodes log records tied to the spans of a trace request.
func (b *builder) logRequest(spans []genSpan, traces int) *template {
	n := int(math.Round(float64(len(spans)) * b.w.LogsPerSpan))
	bySvc := map[int][]int{}
	for i := range n {
		s := spans[i%len(spans)]
		bySvc[s.service] = append(bySvc[s.service], i)
	}
	var req msg
	for _, svc := range sortedKeys(bySvc) {
		var sl msg
		var scope msg
		scope.str(1, "app.logger")
		sl.embed(1, &scope)
		for _, i := range bySvc[svc] {
			s := spans[i%len(spans)]
			var lr msg
			lr.time(1, s.start+(s.end-s.start)/2)
			lr.time(11, s.end)
			sev, text := uint64(9), "INFO"
			if s.err {
				sev, text = 17, "ERROR"
			}
			lr.varint(2, sev)
			lr.str(3, text)
			var body msg
			body.digits(1, fmt.Sprintf("handled %s in %d ms for user-", route(s.service, s.op), (s.end-s.start)/1e6), 5, 50000)
			lr.embed(5, &body)
			lr.keyValue(6, "logger.name", value{kind: 's', s: "app.handlers"})
			lr.keyValue(6, "code.lineno", value{kind: 'i', i: int64(b.rng.IntN(500))})
			lr.id(9, 16, patchTrace, s.trace)
			lr.id(10, 8, patchSpan, s.id)
			sl.embed(2, &lr)
		}
		var rl msg
		rl.embed(1, b.resource(svc))
		rl.embed(2, &sl)
		req.embed(1, &rl)
	}
	return &template{body: req.b, patches: req.patches, traces: traces, spans: len(spans), logs: n}
}

// metricRequest encodes, per service, request counters and latency
// histograms with a few attribute combinations each.
func (b *builder) metricRequest() *template {
	var req msg
	points := 0
	for svc := range b.w.Services {
		var sm msg
		var scope msg
		scope.str(1, "app.metrics")
		sm.embed(1, &scope)
		for i := range b.w.MetricsPerService {
			var metric msg
			op := i % b.w.Operations
			attrs := func(m *msg, num int) {
				m.keyValue(protowireNum(num), "http.route", value{kind: 's', s: route(svc, op)})
				m.keyValue(protowireNum(num), "http.response.status_code", value{kind: 'i', i: 200})
			}
			if i%2 == 0 {
				metric.str(1, "http.server.request.count")
				metric.str(3, "1")
				var sum, dp msg
				attrs(&dp, 7)
				dp.time(2, -int64(time.Hour))
				dp.time(3, 0)
				dp.fixed64(6, uint64(b.rng.IntN(1e6))) // as_int is sfixed64
				sum.embed(1, &dp)
				sum.varint(2, 2) // cumulative
				sum.varint(3, 1)
				metric.embed(7, &sum)
			} else {
				metric.str(1, "http.server.request.duration")
				metric.str(3, "s")
				var h, dp msg
				attrs(&dp, 9)
				dp.time(2, -int64(time.Hour))
				dp.time(3, 0)
				bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
				var count uint64
				var packedCounts, packedBounds []byte
				for range len(bounds) + 1 {
					c := uint64(b.rng.IntN(1000))
					count += c
					packedCounts = binary.LittleEndian.AppendUint64(packedCounts, c)
				}
				for _, x := range bounds {
					packedBounds = binary.LittleEndian.AppendUint64(packedBounds, math.Float64bits(x))
				}
				dp.fixed64(4, count)
				dp.double(5, float64(count)*0.08)
				dp.b = appendPacked(dp.b, 6, packedCounts)
				dp.b = appendPacked(dp.b, 7, packedBounds)
				h.embed(1, &dp)
				h.varint(2, 2)
				metric.embed(9, &h)
			}
			sm.embed(2, &metric)
			points++
		}
		var rm msg
		rm.embed(1, b.resource(svc))
		rm.embed(2, &sm)
		req.embed(1, &rm)
	}
	return &template{body: req.b, patches: req.patches, points: points}
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

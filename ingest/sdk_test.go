package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func testResource() *resource.Resource {
	return resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("service.version", "1.4.2"),
		attribute.String("service.namespace", "shop"),
		attribute.String("service.instance.id", "pod-7"),
		attribute.String("deployment.environment.name", "prod"),
		attribute.Int("process.pid", 4242),
		attribute.String("telemetry.sdk.name", "opentelemetry"),
		attribute.String("telemetry.sdk.language", "go"),
		attribute.String("telemetry.sdk.version", "1.47.0"),
		attribute.String("host.name", "node-3"),
	)
}

func str(v any) string {
	if v == nil {
		return "<nil>"
	}
	return fmt.Sprint(v)
}

// want compares a row's columns with expected values, rendered as strings.
func want(t *testing.T, what string, row map[string]any, expected map[string]string) {
	t.Helper()
	for col, w := range expected {
		v, ok := row[col]
		if !ok {
			t.Errorf("%s: no column %s", what, col)
			continue
		}
		if got := str(v); got != w {
			t.Errorf("%s: %s = %q, want %q", what, col, got, w)
		}
	}
}

func jsonField(t *testing.T, raw any, path ...string) any {
	t.Helper()
	// The query API embeds JSON columns as JSON; read it back plainly
	// (numbers as float64).
	b, err := json.Marshal(raw)
	var v any
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		t.Fatalf("not JSON: %v: %v", raw, err)
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func TestSDK_TracesOverHTTPAndGRPC(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := context.Background()
	exporters := map[string]func() (*otlptrace.Exporter, error){
		"http": func() (*otlptrace.Exporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(s.httpURL+"/v1/traces"),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		},
		"grpc": func() (*otlptrace.Exporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.grpcAddr), otlptracegrpc.WithInsecure(),
				otlptracegrpc.WithCompressor("gzip"))
		},
	}
	for proto, newExp := range exporters {
		exp, err := newExp()
		if err != nil {
			t.Fatal(err)
		}
		// Limits low enough for the last span to exceed each.
		limits := sdktrace.NewSpanLimits()
		limits.AttributeCountLimit, limits.EventCountLimit, limits.LinkCountLimit = 12, 1, 1
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(testResource()), sdktrace.WithBatcher(exp),
			sdktrace.WithSpanLimits(limits))
		tr := tp.Tracer("shop/checkout", trace.WithInstrumentationVersion("0.9.1"),
			trace.WithInstrumentationAttributes(attribute.String("library.team", "payments"), attribute.Int("library.tier", 2)))
		root, rootSpan := tr.Start(ctx, "POST /cart/"+proto, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", "POST"),
				attribute.String("http.route", "/cart/{id}"),
				attribute.Int("http.response.status_code", 500),
				attribute.String("url.full", "https://shop.example/cart/7"),
				attribute.Float64("cart.total", 99.5),
				attribute.Float64("cart.weight", 2),
				attribute.Bool("cart.empty", false),
				attribute.StringSlice("tags", []string{"checkout", "slow"}),
				attribute.Int64Slice("item.ids", []int64{1, 2, 3}),
				attribute.String("protocol", proto),
			))
		_, child := tr.Start(root, "SELECT carts", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.String("db.operation.name", "SELECT")),
			trace.WithLinks(trace.Link{SpanContext: rootSpan.SpanContext(), Attributes: []attribute.KeyValue{attribute.String("why", "retry")}}))
		child.AddEvent("rows fetched", trace.WithAttributes(attribute.Int("rows", 3)))
		child.End()
		rootSpan.RecordError(errors.New("cart is locked"), trace.WithStackTrace(true))
		rootSpan.SetStatus(codes.Error, "checkout failed")
		rootSpan.End()
		// A span whose parent is remote, with a trace state, and more
		// attributes, events and links than the limits keep.
		state, err := trace.ParseTraceState("vendor=abc,other=1")
		if err != nil {
			t.Fatal(err)
		}
		remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: [16]byte{0x4b, 0xf9, 1}, SpanID: [8]byte{0xf0, 7},
			TraceFlags: trace.FlagsSampled, TraceState: state, Remote: true})
		var many []attribute.KeyValue
		for i := range 14 {
			many = append(many, attribute.Int(fmt.Sprintf("a%d", i), i))
		}
		_, rc := tr.Start(trace.ContextWithRemoteSpanContext(ctx, remote), "remote child "+proto, trace.WithAttributes(many...),
			trace.WithLinks(trace.Link{SpanContext: rootSpan.SpanContext()}, trace.Link{SpanContext: remote}))
		rc.AddEvent("first")
		rc.AddEvent("second")
		rc.End()
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("%s: export: %v", proto, err)
		}
		s.waitFlushed()

		root1 := s.row(fmt.Sprintf(`SELECT * FROM records WHERE span_name = 'POST /cart/%s'`, proto))
		sc := rootSpan.SpanContext()
		want(t, proto+" root", root1, map[string]string{
			"project_id": "default", "kind": "span", "span_kind": "server", "level": "17",
			"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String(), "parent_span_id": "<nil>",
			"message": "POST /cart/" + proto, "otel_status_code": "ERROR", "otel_status_message": "checkout failed",
			"is_exception": "true", "exception_type": "*errors.errorString", "exception_message": "cart is locked",
			"http_method": "POST", "http_route": "/cart/{id}", "http_status_code": "500",
			"url_full": "https://shop.example/cart/7", "tags": "[checkout slow]",
			"otel_scope_name": "shop/checkout", "otel_scope_version": "0.9.1",
			"service_name": "checkout", "service_version": "1.4.2", "service_namespace": "shop",
			"service_instance_id": "pod-7", "deployment_environment": "prod", "process_pid": "4242",
			"telemetry_sdk_name": "opentelemetry", "telemetry_sdk_language": "go", "telemetry_sdk_version": "1.47.0",
			"log_body": "<nil>", "severity_text": "<nil>", "otel_links": "<nil>",
			// Sampled, and "whether the parent is remote is known" (bit 8).
			"trace_state": "<nil>", "trace_flags": "257", "observed_timestamp": "<nil>",
			"dropped_attributes_count": "0", "dropped_events_count": "0", "dropped_links_count": "0",
		})
		if v := jsonField(t, root1["otel_scope_attributes"]); fmt.Sprint(v) != "map[library.team:payments library.tier:2]" {
			t.Errorf("%s: scope attributes %v", proto, v)
		}
		rc1 := s.row(fmt.Sprintf(`SELECT * FROM records WHERE span_name = 'remote child %s'`, proto))
		want(t, proto+" remote child", rc1, map[string]string{
			"parent_span_id": remote.SpanID().String(), "trace_state": "vendor=abc,other=1",
			"trace_flags":              "769", // sampled, parent remoteness known (bit 8), parent remote (bit 9)
			"dropped_attributes_count": "2", "dropped_events_count": "1", "dropped_links_count": "1",
		})
		// The limit kept one link, to the remote parent.
		if l := jsonField(t, rc1["otel_links"]).([]any); len(l) != 1 || l[0].(map[string]any)["flags"] != float64(769) ||
			l[0].(map[string]any)["span_id"] != remote.SpanID().String() {
			t.Errorf("%s: links %v", proto, l)
		}
		if st := str(root1["exception_stacktrace"]); !strings.Contains(st, "sdk_test.go") {
			t.Errorf("%s: stack trace %q does not name the test file", proto, st)
		}
		// Attribute types survive: numbers stay numbers, lists stay lists.
		attrs := root1["attributes"]
		if v := jsonField(t, attrs, "http.response.status_code"); v != float64(500) {
			t.Errorf("%s: status code attribute %v (%T)", proto, v, v)
		}
		// A whole double stays a double, an int an int.
		types := s.row(fmt.Sprintf(`SELECT json_type(attributes->'cart.weight') AS w, json_type(attributes->'http.response.status_code') AS c
			FROM records WHERE span_name = 'POST /cart/%s'`, proto))
		if types["w"] != "DOUBLE" || types["c"] != "BIGINT" && types["c"] != "UBIGINT" {
			t.Errorf("%s: json types %v", proto, types)
		}
		if v := jsonField(t, attrs, "cart.total"); v != 99.5 {
			t.Errorf("%s: cart.total %v", proto, v)
		}
		if v := jsonField(t, attrs, "cart.empty"); v != false {
			t.Errorf("%s: cart.empty %v", proto, v)
		}
		if v := fmt.Sprint(jsonField(t, attrs, "item.ids")); v != "[1 2 3]" {
			t.Errorf("%s: item.ids %v", proto, v)
		}
		if v := jsonField(t, root1["otel_resource_attributes"], "host.name"); v != "node-3" {
			t.Errorf("%s: resource host.name %v", proto, v)
		}
		if v := jsonField(t, root1["otel_events"]); !strings.Contains(fmt.Sprint(v), "exception") {
			t.Errorf("%s: events %v", proto, v)
		}
		// Timestamps and duration agree.
		d := s.row(fmt.Sprintf(`SELECT duration, epoch(end_timestamp) - epoch(start_timestamp) AS diff,
			start_timestamp > now() - INTERVAL 1 MINUTE AS recent FROM records WHERE span_name = 'POST /cart/%s'`, proto))
		dur, _ := d["duration"].(json.Number).Float64()
		diff, _ := d["diff"].(json.Number).Float64()
		if dur <= 0 || dur-diff > 2e-6 || diff-dur > 2e-6 || d["recent"] != true {
			t.Errorf("%s: duration %v vs timestamps %v, recent %v", proto, dur, diff, d["recent"])
		}

		child1 := s.row(fmt.Sprintf(`SELECT * FROM records WHERE span_name = 'SELECT carts' AND trace_id = '%s'`, sc.TraceID()))
		want(t, proto+" child", child1, map[string]string{
			"span_kind": "client", "parent_span_id": sc.SpanID().String(), "level": "9",
			"otel_status_code": "UNSET", "is_exception": "false", "db_system": "postgresql", "db_operation": "SELECT",
			"http_method": "<nil>", "tags": "<nil>",
		})
		links := jsonField(t, child1["otel_links"]).([]any)
		link := links[0].(map[string]any)
		if link["trace_id"] != sc.TraceID().String() || link["span_id"] != sc.SpanID().String() ||
			fmt.Sprint(link["attributes"]) != "map[why:retry]" {
			t.Errorf("%s: link %v", proto, link)
		}
		events := jsonField(t, child1["otel_events"]).([]any)
		ev := events[0].(map[string]any)
		if ev["name"] != "rows fetched" || fmt.Sprint(ev["attributes"]) != "map[rows:3]" {
			t.Errorf("%s: event %v", proto, ev)
		}
	}
	if n := s.count(`SELECT count(*) FROM records`); n != 6 {
		t.Fatalf("%d spans stored, want 6", n)
	}
}

func TestSDK_LogsOverHTTPAndGRPC(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := context.Background()
	httpExp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(s.httpURL+"/v1/logs"))
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(s.grpcAddr), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	traceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	spanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	for proto, exp := range map[string]sdklog.Exporter{"http": httpExp, "grpc": grpcExp} {
		lp := sdklog.NewLoggerProvider(sdklog.WithResource(testResource()), sdklog.WithAttributeCountLimit(5),
			sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
		logger := lp.Logger("shop/logs", otellog.WithInstrumentationVersion("2.0"),
			otellog.WithInstrumentationAttributes(attribute.String("library.team", "payments")))
		var rec otellog.Record
		now := time.Now()
		rec.SetTimestamp(now)
		rec.SetObservedTimestamp(now.Add(time.Millisecond))
		rec.SetSeverity(otellog.SeverityWarn)
		rec.SetSeverityText("WARN")
		rec.SetBody(attribute.StringValue("payment retry via " + proto))
		rec.SetEventName("payment.retry")
		rec.AddAttributes(attribute.String("http.route", "/pay"), attribute.Int("attempt", 2),
			attribute.String("exception.type", "TimeoutError"), attribute.String("exception.message", "gateway slow"))
		sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: 1}))
		logger.Emit(sctx, rec)
		// A structured body.
		var rec2 otellog.Record
		rec2.SetTimestamp(now)
		rec2.SetSeverity(otellog.SeverityInfo)
		rec2.SetBody(attribute.MapValue(attribute.String("user", "ada"), attribute.Int("items", 3)))
		rec2.AddAttributes(attribute.String("protocol", proto), attribute.Int("b1", 1), attribute.Int("b2", 2),
			attribute.Int("b3", 3), attribute.Int("b4", 4), attribute.Int("b5", 5)) // one over the limit of 5
		logger.Emit(ctx, rec2)
		if err := lp.Shutdown(ctx); err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
	}
	s.waitFlushed()
	for _, proto := range []string{"http", "grpc"} {
		row := s.row(`SELECT * FROM records WHERE message = 'payment retry via ` + proto + `'`)
		want(t, proto+" log", row, map[string]string{
			"kind": "log", "level": "13", "severity_text": "WARN", "span_name": "payment.retry",
			"trace_id": traceID.String(), "span_id": spanID.String(), "duration": "<nil>", "end_timestamp": "<nil>",
			"is_exception": "true", "exception_type": "TimeoutError", "exception_message": "gateway slow",
			"http_route": "/pay", "service_name": "checkout", "otel_scope_name": "shop/logs", "otel_scope_version": "2.0",
			"log_body": `payment retry via ` + proto, "otel_status_code": "<nil>",
			"trace_flags": "1", "trace_state": "<nil>", "dropped_attributes_count": "0",
			"dropped_events_count": "<nil>", "dropped_links_count": "<nil>",
		})
		if v := jsonField(t, row["otel_scope_attributes"]); fmt.Sprint(v) != "map[library.team:payments]" {
			t.Errorf("%s: scope attributes %v", proto, v)
		}
		// Observed a millisecond after the record's time, as set above.
		obs := s.row(`SELECT epoch_us(observed_timestamp) - epoch_us(start_timestamp) AS d FROM records
			WHERE message = 'payment retry via ` + proto + `'`)
		if str(obs["d"]) != "1000" {
			t.Errorf("%s: observed - time = %v µs, want 1000", proto, obs["d"])
		}
		structured := s.row(`SELECT * FROM records WHERE attributes->>'protocol' = '` + proto + `'`)
		if v := jsonField(t, structured["log_body"], "items"); v != float64(3) {
			t.Errorf("%s: structured body %v", proto, structured["log_body"])
		}
		if structured["trace_id"] != nil || structured["level"] != json.Number("9") {
			t.Errorf("%s: structured log trace_id %v level %v", proto, structured["trace_id"], structured["level"])
		}
		want(t, proto+" structured log", structured, map[string]string{"dropped_attributes_count": "1", "trace_flags": "0"})
	}
}

func TestSDK_MetricsOverHTTPAndGRPC(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := context.Background()
	httpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(s.httpURL+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(s.grpcAddr), otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	for proto, exp := range map[string]sdkmetric.Exporter{"http": httpExp, "grpc": grpcExp} {
		temporality := sdkmetric.DefaultTemporalitySelector
		if proto == "grpc" {
			temporality = func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality }
		}
		reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(temporality))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(testResource()), sdkmetric.WithReader(reader),
			sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "latency.exp"},
				sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})))
		meter := mp.Meter("shop/metrics", metric.WithInstrumentationAttributes(attribute.String("library.team", "payments")))
		attrs := attribute.NewSet(attribute.String("route", "/cart"), attribute.String("protocol", proto))
		counter, _ := meter.Int64Counter("requests", metric.WithUnit("1"))
		counter.Add(ctx, 7, metric.WithAttributeSet(attrs))
		gauge, _ := meter.Float64Gauge("temperature")
		gauge.Record(ctx, 21.5, metric.WithAttributeSet(attrs))
		updown, _ := meter.Int64UpDownCounter("queue.depth")
		updown.Add(ctx, -3, metric.WithAttributeSet(attrs))
		hist, _ := meter.Float64Histogram("latency", metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
		for _, v := range []float64{0.05, 0.2, 0.3, 2} {
			hist.Record(ctx, v, metric.WithAttributeSet(attrs))
		}
		exph, _ := meter.Float64Histogram("latency.exp")
		for _, v := range []float64{1, 2, 4, 8} {
			exph.Record(ctx, v, metric.WithAttributeSet(attrs))
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		if err := exp.Export(ctx, &rm); err != nil {
			t.Fatalf("%s: export: %v", proto, err)
		}
		mp.Shutdown(ctx)
		exp.Shutdown(ctx)
	}
	s.waitFlushed()
	for _, proto := range []string{"http", "grpc"} {
		where := `WHERE attributes->>'protocol' = '` + proto + `' AND metric_name = `
		temporality := "cumulative"
		if proto == "grpc" {
			temporality = "delta"
		}
		want(t, proto+" counter", s.row(`SELECT * FROM metrics `+where+`'requests'`), map[string]string{
			"metric_type": "sum", "scalar_value": "7", "is_monotonic": "true", "unit": "1",
			"aggregation_temporality": temporality, "service_name": "checkout", "otel_scope_name": "shop/metrics",
			"histogram_count": "<nil>",
		})
		gauge := s.row(`SELECT * FROM metrics ` + where + `'temperature'`)
		want(t, proto+" gauge", gauge, map[string]string{
			"metric_type": "gauge", "scalar_value": "21.5", "is_monotonic": "<nil>", "aggregation_temporality": "<nil>",
			"metric_metadata": "<nil>",
		})
		if v := jsonField(t, gauge["otel_scope_attributes"]); fmt.Sprint(v) != "map[library.team:payments]" {
			t.Errorf("%s: scope attributes %v", proto, v)
		}
		want(t, proto+" updown", s.row(`SELECT * FROM metrics `+where+`'queue.depth'`), map[string]string{
			"metric_type": "sum", "scalar_value": "-3", "is_monotonic": "false",
		})
		want(t, proto+" histogram", s.row(`SELECT * FROM metrics `+where+`'latency'`), map[string]string{
			"metric_type": "histogram", "histogram_count": "4", "histogram_sum": "2.55", "histogram_min": "0.05",
			"histogram_max": "2", "histogram_bucket_counts": "[1 2 0 1]", "histogram_explicit_bounds": "[0.1 0.5 1]",
			"scalar_value": "<nil>", "exp_histogram_scale": "<nil>",
		})
		exp := s.row(`SELECT * FROM metrics ` + where + `'latency.exp'`)
		want(t, proto+" exponential histogram", exp, map[string]string{
			"metric_type": "exponential_histogram", "histogram_count": "4", "histogram_sum": "15",
			"exp_histogram_zero_count": "0", "histogram_bucket_counts": "<nil>",
		})
		// Bucket math: every value lands in a positive bucket.
		b := s.row(`SELECT list_sum(exp_histogram_positive_bucket_counts) AS n, exp_histogram_scale AS scale,
			exp_histogram_positive_bucket_counts_offset AS off FROM metrics ` + where + `'latency.exp'`)
		if str(b["n"]) != "4" || str(b["scale"]) == "<nil>" || str(b["off"]) == "<nil>" {
			t.Errorf("%s: exponential buckets %v", proto, b)
		}
	}
}

// A metric's metadata (OTLP's Metric.metadata; no Go SDK sets it yet)
// arrives as JSON, repeated on each of its points.
func TestIngest_MetricMetadata(t *testing.T) {
	s := newStack(t, stackOptions{})
	now := time.Now().UnixNano()
	body := fmt.Sprintf(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"meta"}}]},
		"scopeMetrics":[{"scope":{"name":"s"},"metrics":[{"name":"queue.size","metadata":[{"key":"source","value":{"stringValue":"prometheus"}},
		{"key":"help.length","value":{"intValue":"12"}}],"gauge":{"dataPoints":[{"timeUnixNano":"%d","asInt":"3"},{"timeUnixNano":"%d","asInt":"4"}]}}]}]}]}`,
		now, now+1000)
	resp, err := http.Post(s.httpURL+"/v1/metrics", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s.waitFlushed()
	rows := s.query(`SELECT metric_metadata->>'source', metric_metadata->'help.length', scalar_value FROM metrics
		WHERE metric_name = 'queue.size' ORDER BY scalar_value`)
	if got := fmt.Sprint(rows); got != "[[prometheus 12 3] [prometheus 12 4]]" {
		t.Fatalf("metadata of the points: %s", got)
	}
}

package ingest

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/strata-db/strata/engine/schema"
)

var (
	recordsTable, _ = schema.Lookup(schema.Records)
	recordsHints    = newSizeHints(recordsTable)
)

// Severity numbers the tables use for spans, which have no severity.
const (
	levelInfo  = 9
	levelError = 17
)

// promotedSlot says which promoted column an attribute key fills, with
// what priority (0 wins over 1) when several keys map to one column, and
// the value type the column takes.
type promotedSlot struct {
	col, prio int
	want      pcommon.ValueType
}

var promotedKeys = func() map[string]promotedSlot {
	m := map[string]promotedSlot{}
	for i, p := range schema.PromotedAttributes {
		want := pcommon.ValueTypeStr
		if p.Int {
			want = pcommon.ValueTypeInt
		}
		for prio, k := range p.Keys {
			m[k] = promotedSlot{col: i, prio: prio, want: want}
		}
	}
	return m
}()

// recordsBuilder appends spans and log records as rows of `records`,
// straight from pdata into Arrow builders.
type recordsBuilder struct {
	b   *array.RecordBuilder
	res resourceCols

	project                                               *array.StringBuilder
	startTS, endTS                                        *array.TimestampBuilder
	duration                                              *array.Float64Builder
	traceID, spanID, parentID, kind, spanKind, severity   *array.StringBuilder
	level                                                 *array.Int32Builder
	spanName, message, logBody, statusCode, statusMessage *array.StringBuilder
	isException                                           *array.BooleanBuilder
	excType, excMessage, excStack, attrs, events, links   *array.StringBuilder
	tags                                                  *array.ListBuilder
	tagValues                                             *array.StringBuilder
	traceState                                            *array.StringBuilder
	traceFlags, droppedAttrs, droppedEvents, droppedLinks *array.Int64Builder
	observed                                              *array.TimestampBuilder
	promotedStr                                           []*array.StringBuilder // nil for int columns
	promotedInt                                           []*array.Int64Builder  // nil for string columns

	probe prober[*recordsBuilder] // see admit

	// Scratch, reused across rows.
	buf      []byte
	hex      [32]byte
	found    []pcommon.Value
	foundPri []int
	win      Window
}

// newRecordsBuilder returns a builder sized for about n rows.
func newRecordsBuilder(mem memory.Allocator, w Window, n int) *recordsBuilder {
	t := recordsTable
	b := array.NewRecordBuilder(mem, t.Schema)
	recordsHints.reserve(b, n)
	rb := &recordsBuilder{
		b:             b,
		res:           newResourceCols(b, t, w),
		project:       stringCol(b, t, "project_id"),
		startTS:       b.Field(t.Index("start_timestamp")).(*array.TimestampBuilder),
		endTS:         b.Field(t.Index("end_timestamp")).(*array.TimestampBuilder),
		duration:      b.Field(t.Index("duration")).(*array.Float64Builder),
		traceID:       stringCol(b, t, "trace_id"),
		spanID:        stringCol(b, t, "span_id"),
		parentID:      stringCol(b, t, "parent_span_id"),
		kind:          stringCol(b, t, "kind"),
		spanKind:      stringCol(b, t, "span_kind"),
		level:         b.Field(t.Index("level")).(*array.Int32Builder),
		severity:      stringCol(b, t, "severity_text"),
		spanName:      stringCol(b, t, "span_name"),
		message:       stringCol(b, t, "message"),
		logBody:       stringCol(b, t, "log_body"),
		statusCode:    stringCol(b, t, "otel_status_code"),
		statusMessage: stringCol(b, t, "otel_status_message"),
		isException:   b.Field(t.Index("is_exception")).(*array.BooleanBuilder),
		excType:       stringCol(b, t, "exception_type"),
		excMessage:    stringCol(b, t, "exception_message"),
		excStack:      stringCol(b, t, "exception_stacktrace"),
		tags:          b.Field(t.Index("tags")).(*array.ListBuilder),
		attrs:         stringCol(b, t, "attributes"),
		events:        stringCol(b, t, "otel_events"),
		links:         stringCol(b, t, "otel_links"),
		traceState:    stringCol(b, t, "trace_state"),
		traceFlags:    b.Field(t.Index("trace_flags")).(*array.Int64Builder),
		observed:      b.Field(t.Index("observed_timestamp")).(*array.TimestampBuilder),
		droppedAttrs:  b.Field(t.Index("dropped_attributes_count")).(*array.Int64Builder),
		droppedEvents: b.Field(t.Index("dropped_events_count")).(*array.Int64Builder),
		droppedLinks:  b.Field(t.Index("dropped_links_count")).(*array.Int64Builder),
		found:         make([]pcommon.Value, len(schema.PromotedAttributes)),
		foundPri:      make([]int, len(schema.PromotedAttributes)),
		win:           w,
	}
	rb.tagValues = rb.tags.ValueBuilder().(*array.StringBuilder)
	for _, p := range schema.PromotedAttributes {
		if p.Int {
			rb.promotedInt = append(rb.promotedInt, b.Field(t.Index(p.Column)).(*array.Int64Builder))
			rb.promotedStr = append(rb.promotedStr, nil)
		} else {
			rb.promotedStr = append(rb.promotedStr, stringCol(b, t, p.Column))
			rb.promotedInt = append(rb.promotedInt, nil)
		}
	}
	return rb
}

// finish returns the batch built so far (nil if empty) and releases the
// builder.
func (rb *recordsBuilder) finish() arrow.RecordBatch {
	defer rb.release()
	n := rb.project.Len()
	if n == 0 {
		return nil
	}
	recordsHints.learn(rb.b, n)
	return rb.b.NewRecordBatch()
}

func (rb *recordsBuilder) release() {
	rb.b.Release()
	rb.probe.release()
}

// newProbe is a builder for admit to try items on.
func (rb *recordsBuilder) newProbe() *recordsBuilder {
	w := rb.win
	w.Need = nil // a few rows, started again often
	return newRecordsBuilder(memory.DefaultAllocator, w, 1)
}

// appendAttributes writes the attributes JSON and fills the promoted
// columns and tags from the same map.
func (rb *recordsBuilder) appendAttributes(attrs pcommon.Map) error {
	for i := range rb.found {
		rb.found[i] = pcommon.Value{}
		rb.foundPri[i] = 1 << 30
	}
	var tags pcommon.Slice
	hasTags := false
	if attrs.Len() == 0 {
		rb.attrs.AppendNull()
	} else {
		var err error
		rb.buf, err = appendMapVisit(rb.buf[:0], attrs, 0, func(k string, v pcommon.Value) {
			// A key of the wrong type does not hide a later one of the right
			// type (http.response.status_code "200" before http.status_code 200).
			if slot, ok := promotedKeys[k]; ok && slot.prio < rb.foundPri[slot.col] && v.Type() == slot.want {
				rb.found[slot.col], rb.foundPri[slot.col] = v, slot.prio
			}
			if (k == "tags" || k == "logfire.tags") && v.Type() == pcommon.ValueTypeSlice {
				tags, hasTags = v.Slice(), true
			}
		})
		if err != nil {
			return err
		}
		rb.attrs.BinaryBuilder.Append(rb.buf)
	}
	for i, p := range schema.PromotedAttributes {
		v := rb.found[i]
		if p.Int {
			if rb.foundPri[i] < 1<<30 {
				rb.promotedInt[i].Append(v.Int())
			} else {
				rb.promotedInt[i].AppendNull()
			}
			continue
		}
		if rb.foundPri[i] < 1<<30 {
			rb.promotedStr[i].Append(v.Str())
		} else {
			rb.promotedStr[i].AppendNull()
		}
	}
	if !hasTags {
		rb.tags.AppendNull()
		return nil
	}
	rb.tags.Append(true)
	for i := range tags.Len() {
		if v := tags.At(i); v.Type() == pcommon.ValueTypeStr {
			rb.tagValues.Append(v.Str())
		}
	}
	return nil
}

// exception is the first `exception` event of a span, or the exception.*
// attributes of a log record.
type exception struct {
	found                    bool
	typ, message, stacktrace string
}

func exceptionFrom(attrs pcommon.Map) exception {
	e := exception{
		typ:        strAttr(attrs, "exception.type"),
		message:    strAttr(attrs, "exception.message"),
		stacktrace: strAttr(attrs, "exception.stacktrace"),
	}
	e.found = e.typ != "" || e.message != ""
	return e
}

func (rb *recordsBuilder) appendException(e exception) {
	rb.isException.Append(e.found)
	appendOpt(rb.excType, e.typ)
	appendOpt(rb.excMessage, e.message)
	appendOpt(rb.excStack, e.stacktrace)
}

var spanKinds = [...]string{
	ptrace.SpanKindUnspecified: "",
	ptrace.SpanKindInternal:    "internal",
	ptrace.SpanKindServer:      "server",
	ptrace.SpanKindClient:      "client",
	ptrace.SpanKindProducer:    "producer",
	ptrace.SpanKindConsumer:    "consumer",
}

var statusCodes = [...]string{
	ptrace.StatusCodeUnset: "UNSET",
	ptrace.StatusCodeOk:    "OK",
	ptrace.StatusCodeError: "ERROR",
}

// addTraces appends every span of td.
// addTraces appends the spans of td. With rj nil the first bad span
// fails it all; with rj set, bad spans are counted there and skipped.
func (rb *recordsBuilder) addTraces(project string, td ptrace.Traces, rj *rejects) error {
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res, err := newResource(rs.Resource())
		if err != nil {
			err = fmt.Errorf("resource_spans[%d].resource: %w", i, err)
			if rj == nil {
				return err
			}
			n := 0
			for j := range rs.ScopeSpans().Len() {
				n += rs.ScopeSpans().At(j).Spans().Len()
			}
			rj.add(n, err)
			continue
		}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j)
			sc, err := newScope(ss.Scope())
			if err != nil {
				err = fmt.Errorf("resource_spans[%d].scope_spans[%d]: %w", i, j, err)
				if rj == nil {
					return err
				}
				rj.add(ss.Spans().Len(), err)
				continue
			}
			spans := ss.Spans()
			for k := range spans.Len() {
				err := admit(rb, &rb.probe, rj, 1, func() string { return fmt.Sprintf("resource_spans[%d].scope_spans[%d].spans[%d]", i, j, k) },
					func(b *recordsBuilder) error { return b.addSpan(project, &res, &sc, spans.At(k)) })
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (rb *recordsBuilder) addSpan(project string, res *resource, sc *scope, s ptrace.Span) error {
	traceID, spanID := s.TraceID(), s.SpanID()
	if traceID.IsEmpty() {
		return badInput("trace_id is empty or all zeros")
	}
	if spanID.IsEmpty() {
		return badInput("span_id is empty or all zeros")
	}
	start, end := s.StartTimestamp(), s.EndTimestamp()
	if err := checkTime("start_time_unix_nano", start, rb.win); err != nil {
		return err
	}
	if err := checkTime("end_time_unix_nano", end, rb.win); err != nil {
		return err
	}
	if err := checkString("name", s.Name()); err != nil {
		return err
	}
	if err := checkString("status.message", s.Status().Message()); err != nil {
		return err
	}
	traceState := s.TraceState().AsRaw()
	if err := checkString("trace_state", traceState); err != nil {
		return err
	}
	rb.project.Append(project)
	rb.startTS.Append(micros(start))
	rb.endTS.Append(micros(end))
	rb.duration.Append(float64(int64(end)-int64(start)) / 1e9)
	appendHex(rb.traceID, traceID[:], rb.hex[:])
	appendHex(rb.spanID, spanID[:], rb.hex[:])
	parent := s.ParentSpanID()
	appendHex(rb.parentID, parent[:], rb.hex[:])
	rb.kind.Append("span")
	kind := ""
	if int(s.Kind()) < len(spanKinds) {
		kind = spanKinds[s.Kind()]
	}
	appendOpt(rb.spanKind, kind)
	status := s.Status()
	if status.Code() == ptrace.StatusCodeError {
		rb.level.Append(levelError)
	} else {
		rb.level.Append(levelInfo)
	}
	rb.severity.AppendNull()
	rb.spanName.Append(s.Name())
	rb.message.Append(s.Name())
	rb.logBody.AppendNull()
	code := "UNSET"
	if int(status.Code()) < len(statusCodes) {
		code = statusCodes[status.Code()]
	}
	rb.statusCode.Append(code)
	appendOpt(rb.statusMessage, status.Message())

	exc, err := rb.appendEvents(s.Events())
	if err != nil {
		return err
	}
	rb.appendException(exc)
	if err := rb.appendAttributes(s.Attributes()); err != nil {
		return err
	}
	if err := rb.appendLinks(s.Links()); err != nil {
		return err
	}
	appendOpt(rb.traceState, traceState)
	rb.traceFlags.Append(int64(s.Flags()))
	rb.observed.AppendNull()
	rb.droppedAttrs.Append(int64(s.DroppedAttributesCount()))
	rb.droppedEvents.Append(int64(s.DroppedEventsCount()))
	rb.droppedLinks.Append(int64(s.DroppedLinksCount()))
	return rb.res.append(res, sc, 0)
}

// appendEvents writes otel_events and returns the first exception event.
// The event column is appended after the attributes column is, but column
// order within a row does not matter to the builders.
func (rb *recordsBuilder) appendEvents(events ptrace.SpanEventSlice) (exception, error) {
	var exc exception
	if events.Len() == 0 {
		rb.events.AppendNull()
		return exc, nil
	}
	b := append(rb.buf[:0], '[')
	var err error
	for i := range events.Len() {
		e := events.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		if b, err = appendString(b, e.Name()); err != nil {
			return exc, fmt.Errorf("events[%d].name: %w", i, err)
		}
		b = append(b, `,"timestamp":`...)
		b = appendTime(b, uint64(e.Timestamp()))
		if e.Attributes().Len() > 0 {
			b = append(b, `,"attributes":`...)
			if b, err = appendMap(b, e.Attributes(), 0); err != nil {
				return exc, fmt.Errorf("events[%d]: %w", i, err)
			}
		}
		b = appendCount(b, "dropped_attributes_count", e.DroppedAttributesCount())
		b = append(b, '}')
		if !exc.found && e.Name() == "exception" {
			exc = exceptionFrom(e.Attributes())
			exc.found = true
		}
	}
	b = append(b, ']')
	rb.events.BinaryBuilder.Append(b)
	rb.buf = b
	return exc, nil
}

func (rb *recordsBuilder) appendLinks(links ptrace.SpanLinkSlice) error {
	if links.Len() == 0 {
		rb.links.AppendNull()
		return nil
	}
	b := append(rb.buf[:0], '[')
	var err error
	for i := range links.Len() {
		l := links.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		// An empty id is null, as an empty parent_span_id is NULL (QA:
		// it was written as zeros).
		b = append(b, `{"trace_id":`...)
		if tid := l.TraceID(); tid.IsEmpty() {
			b = append(b, "null"...)
		} else {
			b = appendHexBytes(append(b, '"'), tid[:])
			b = append(b, '"')
		}
		b = append(b, `,"span_id":`...)
		if sid := l.SpanID(); sid.IsEmpty() {
			b = append(b, "null"...)
		} else {
			b = appendHexBytes(append(b, '"'), sid[:])
			b = append(b, '"')
		}
		if ts := l.TraceState().AsRaw(); ts != "" {
			b = append(b, `,"trace_state":`...)
			if b, err = appendString(b, ts); err != nil {
				return fmt.Errorf("links[%d].trace_state: %w", i, err)
			}
		}
		if l.Attributes().Len() > 0 {
			b = append(b, `,"attributes":`...)
			if b, err = appendMap(b, l.Attributes(), 0); err != nil {
				return fmt.Errorf("links[%d]: %w", i, err)
			}
		}
		b = appendCount(b, "flags", l.Flags())
		b = appendCount(b, "dropped_attributes_count", l.DroppedAttributesCount())
		b = append(b, '}')
	}
	b = append(b, ']')
	rb.links.BinaryBuilder.Append(b)
	rb.buf = b
	return nil
}

func appendHexBytes(b []byte, id []byte) []byte {
	for _, c := range id {
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

// addLogs appends every log record of ld.
// addLogs appends the log records of ld, as addTraces does spans.
func (rb *recordsBuilder) addLogs(project string, ld plog.Logs, rj *rejects) error {
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		rl := rls.At(i)
		res, err := newResource(rl.Resource())
		if err != nil {
			err = fmt.Errorf("resource_logs[%d].resource: %w", i, err)
			if rj == nil {
				return err
			}
			n := 0
			for j := range rl.ScopeLogs().Len() {
				n += rl.ScopeLogs().At(j).LogRecords().Len()
			}
			rj.add(n, err)
			continue
		}
		sls := rl.ScopeLogs()
		for j := range sls.Len() {
			sl := sls.At(j)
			sc, err := newScope(sl.Scope())
			if err != nil {
				err = fmt.Errorf("resource_logs[%d].scope_logs[%d]: %w", i, j, err)
				if rj == nil {
					return err
				}
				rj.add(sl.LogRecords().Len(), err)
				continue
			}
			logs := sl.LogRecords()
			for k := range logs.Len() {
				err := admit(rb, &rb.probe, rj, 1, func() string { return fmt.Sprintf("resource_logs[%d].scope_logs[%d].log_records[%d]", i, j, k) },
					func(b *recordsBuilder) error { return b.addLog(project, &res, &sc, logs.At(k)) })
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (rb *recordsBuilder) addLog(project string, res *resource, sc *scope, l plog.LogRecord) error {
	// time_unix_nano is optional for logs: fall back to when it was observed,
	// then to when it arrived.
	ts := l.Timestamp()
	if ts == 0 {
		ts = l.ObservedTimestamp()
	}
	if ts == 0 {
		ts = pcommon.NewTimestampFromTime(rb.win.Now)
	}
	if err := checkTime("time_unix_nano", ts, rb.win); err != nil {
		return err
	}
	if err := checkString("severity_text", l.SeverityText()); err != nil {
		return err
	}
	if err := checkString("event_name", l.EventName()); err != nil {
		return err
	}
	rb.project.Append(project)
	rb.startTS.Append(micros(ts))
	rb.endTS.AppendNull()
	rb.duration.AppendNull()
	traceID, spanID := l.TraceID(), l.SpanID()
	appendHex(rb.traceID, traceID[:], rb.hex[:])
	appendHex(rb.spanID, spanID[:], rb.hex[:])
	rb.parentID.AppendNull()
	rb.kind.Append("log")
	rb.spanKind.AppendNull()
	rb.level.Append(int32(l.SeverityNumber()))
	appendOpt(rb.severity, l.SeverityText())
	appendOpt(rb.spanName, l.EventName())

	body := l.Body()
	switch body.Type() {
	case pcommon.ValueTypeEmpty:
		rb.message.AppendNull()
		rb.logBody.AppendNull()
	case pcommon.ValueTypeStr:
		if err := checkString("body", body.Str()); err != nil {
			return err
		}
		rb.message.Append(body.Str())
		var err error
		if rb.buf, err = appendString(rb.buf[:0], body.Str()); err != nil {
			return err
		}
		rb.logBody.BinaryBuilder.Append(rb.buf)
	default:
		var err error
		if rb.buf, err = appendValue(rb.buf[:0], body, 0); err != nil {
			return fmt.Errorf("body: %w", err)
		}
		msg := rb.buf
		if msg[0] == '"' {
			// Bytes as base64, a double's NaN or Infinity: the JSON body
			// quotes them; the message is the text itself, like a string
			// body's (neither needs an escape).
			msg = msg[1 : len(msg)-1]
		}
		rb.message.BinaryBuilder.Append(msg)
		rb.logBody.BinaryBuilder.Append(rb.buf)
	}
	rb.statusCode.AppendNull()
	rb.statusMessage.AppendNull()
	rb.appendException(exceptionFrom(l.Attributes()))
	if err := rb.appendAttributes(l.Attributes()); err != nil {
		return err
	}
	rb.events.AppendNull()
	rb.links.AppendNull()
	rb.traceState.AppendNull()
	rb.traceFlags.Append(int64(l.Flags()))
	// Optional, and not checked like the record's time: NULL when unset
	// or past 2^63 ns (the year 2262), which would wrap.
	if obs := l.ObservedTimestamp(); obs != 0 && uint64(obs) <= math.MaxInt64 {
		rb.observed.Append(micros(obs))
	} else {
		rb.observed.AppendNull()
	}
	rb.droppedAttrs.Append(int64(l.DroppedAttributesCount()))
	rb.droppedEvents.AppendNull()
	rb.droppedLinks.AppendNull()
	return rb.res.append(res, sc, 0)
}

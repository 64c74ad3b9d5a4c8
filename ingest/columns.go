package ingest

import (
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/strata-db/strata/engine/schema"
)

// Clock limits on timestamps: a span or point stamped more than maxFuture
// ahead of the server's clock is refused, as is a timestamp of 0 or one
// before the window's oldest.
const maxFuture = time.Hour

func checkTime(field string, ts pcommon.Timestamp, w Window) error {
	if ts == 0 {
		return badInput("%s is 0", field)
	}
	// Unsigned: a timestamp past 2^63 ns must not wrap into the past.
	if limit := w.Now.Add(maxFuture); uint64(ts) > uint64(limit.UnixNano()) {
		return badInput("%s %d is more than %v in the future", field, uint64(ts), maxFuture)
	}
	if !w.Oldest.IsZero() && int64(ts) < w.Oldest.UnixNano() {
		return badInput("%s %s is older than the project keeps data (from %s on); it would be deleted at once",
			field, ts.AsTime().Format(time.RFC3339), w.Oldest.Format(time.RFC3339))
	}
	return nil
}

// micros converts an OTLP timestamp to the tables' microseconds.
func micros(ts pcommon.Timestamp) arrow.Timestamp { return arrow.Timestamp(int64(ts) / 1000) }

// stringCol returns the string builder of a column, looking through the JSON
// extension type to its storage.
func stringCol(b *array.RecordBuilder, t *schema.Table, name string) *array.StringBuilder {
	switch fb := b.Field(t.Index(name)).(type) {
	case *array.StringBuilder:
		return fb
	case *array.ExtensionBuilder:
		return fb.StorageBuilder().(*array.StringBuilder)
	}
	panic("column " + name + " is not a string")
}

func appendOpt(b *array.StringBuilder, s string) {
	if s == "" {
		b.AppendNull()
		return
	}
	b.Append(s)
}

// appendJSON appends a JSON value, or null for an empty one.
func appendJSON(b *array.StringBuilder, js []byte) {
	if len(js) == 0 {
		b.AppendNull()
		return
	}
	b.BinaryBuilder.Append(js)
}

// appendHex appends an id as lower-case hex, or null if it is all zeros.
func appendHex(b *array.StringBuilder, id []byte, scratch []byte) {
	zero := true
	for _, c := range id {
		if c != 0 {
			zero = false
			break
		}
	}
	if zero {
		b.AppendNull()
		return
	}
	n := hex.Encode(scratch, id)
	b.BinaryBuilder.Append(scratch[:n])
}

// resource is what every row of one OTLP resource shares, computed once.
type resource struct {
	size                                    int    // bytes each row repeats
	attrs                                   []byte // JSON, nil if none
	service, version, namespace, instance   string
	environment, sdkName, sdkLang, sdkVersn string
	pid                                     int64
	hasPID                                  bool
}

func strAttr(m pcommon.Map, keys ...string) string {
	for _, k := range keys {
		if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
			return v.Str()
		}
	}
	return ""
}

func newResource(r pcommon.Resource) (resource, error) {
	attrs := r.Attributes()
	var res resource
	if attrs.Len() > 0 {
		js, err := appendMap(nil, attrs, 0)
		if err != nil {
			return res, err
		}
		res.attrs = js
	}
	res.service = strAttr(attrs, "service.name")
	if res.service == "" {
		res.service = "unknown_service" // what the OpenTelemetry SDKs default to
	}
	res.version = strAttr(attrs, "service.version")
	res.namespace = strAttr(attrs, "service.namespace")
	res.instance = strAttr(attrs, "service.instance.id")
	res.environment = strAttr(attrs, "deployment.environment.name", "deployment.environment")
	res.sdkName = strAttr(attrs, "telemetry.sdk.name")
	res.sdkLang = strAttr(attrs, "telemetry.sdk.language")
	res.sdkVersn = strAttr(attrs, "telemetry.sdk.version")
	if v, ok := attrs.Get("process.pid"); ok && v.Type() == pcommon.ValueTypeInt {
		res.pid, res.hasPID = v.Int(), true
	}
	res.size = len(res.attrs) + len(res.service) + len(res.version) + len(res.namespace) + len(res.instance) +
		len(res.environment) + len(res.sdkName) + len(res.sdkLang) + len(res.sdkVersn)
	return res, nil
}

// resourceCols are the builders of the columns both tables share.
type resourceCols struct {
	size int64             // bytes the rows take beyond their own values
	need func(int64) error // Window.Need
	max  int64             // Window.MaxBytes

	scopeName, scopeVersion, scopeAttrs, attrs         *array.StringBuilder
	service, version, namespace, instance, environment *array.StringBuilder
	pid                                                *array.Int64Builder
	sdkName, sdkLang, sdkVersion                       *array.StringBuilder
}

func newResourceCols(b *array.RecordBuilder, t *schema.Table, w Window) resourceCols {
	return resourceCols{
		need:         w.Need,
		max:          w.MaxBytes,
		scopeName:    stringCol(b, t, "otel_scope_name"),
		scopeVersion: stringCol(b, t, "otel_scope_version"),
		scopeAttrs:   stringCol(b, t, "otel_scope_attributes"),
		attrs:        stringCol(b, t, "otel_resource_attributes"),
		service:      stringCol(b, t, "service_name"),
		version:      stringCol(b, t, "service_version"),
		namespace:    stringCol(b, t, "service_namespace"),
		instance:     stringCol(b, t, "service_instance_id"),
		environment:  stringCol(b, t, "deployment_environment"),
		pid:          b.Field(t.Index("process_pid")).(*array.Int64Builder),
		sdkName:      stringCol(b, t, "telemetry_sdk_name"),
		sdkLang:      stringCol(b, t, "telemetry_sdk_language"),
		sdkVersion:   stringCol(b, t, "telemetry_sdk_version"),
	}
}

// rowBytes is what a row costs beyond its values: offsets and validity
// of some fifty columns.
const rowBytes = 160

// growStep is the least memory a conversion asks for at a time.
const growStep = 1 << 20

// memPerByte is what a byte the rows repeat costs in memory at the peak:
// builders grow by doubling and the WAL frame copies them (a counted byte
// was measured at about 5 with GC's headroom). At 3, an export of 8,192
// spans with 10 kB resources still fits the default 256 MiB.
const memPerByte = 3

// charge counts n more bytes of the rows being built beyond their values.
func (c *resourceCols) charge(n int) error {
	c.size += int64(n)
	cost := c.size * memPerByte
	switch {
	case c.need != nil:
		return c.need(cost)
	case c.max > 0 && cost > c.max:
		return tooLarge(cost, c.max)
	}
	return nil
}

// append writes the resource and scope columns of a row, counting what
// the row repeats: those, and other bytes each row of its kind copies
// (a data point's metric name, unit and description).
func (c *resourceCols) append(r *resource, sc *scope, repeated int) error {
	if err := c.charge(rowBytes + r.size + sc.size + repeated); err != nil {
		return err
	}
	appendOpt(c.scopeName, sc.name)
	appendOpt(c.scopeVersion, sc.version)
	appendJSON(c.scopeAttrs, sc.attrs)
	appendJSON(c.attrs, r.attrs)
	c.service.Append(r.service)
	appendOpt(c.version, r.version)
	appendOpt(c.namespace, r.namespace)
	appendOpt(c.instance, r.instance)
	appendOpt(c.environment, r.environment)
	if r.hasPID {
		c.pid.Append(r.pid)
	} else {
		c.pid.AppendNull()
	}
	appendOpt(c.sdkName, r.sdkName)
	appendOpt(c.sdkLang, r.sdkLang)
	appendOpt(c.sdkVersion, r.sdkVersn)
	return nil
}

// scope is what every row of one instrumentation scope shares, computed once.
type scope struct {
	size          int // bytes each row repeats
	name, version string
	attrs         []byte // JSON, nil if none
}

func newScope(s pcommon.InstrumentationScope) (scope, error) {
	if err := checkString("scope name", s.Name()); err != nil {
		return scope{}, err
	}
	if err := checkString("scope version", s.Version()); err != nil {
		return scope{}, err
	}
	sc := scope{name: s.Name(), version: s.Version()}
	if s.Attributes().Len() > 0 {
		js, err := appendMap(nil, s.Attributes(), 0)
		if err != nil {
			return scope{}, fmt.Errorf("scope attributes: %w", err)
		}
		sc.attrs = js
	}
	sc.size = len(sc.name) + len(sc.version) + len(sc.attrs)
	return sc, nil
}

// sizeHints remember how many bytes of string data a row of each column
// took in recent batches, so the next batch's builders are allocated once
// at about the right size instead of doubling their way up. A hint is
// only a guess: a batch moves it in proportion to its rows, and no column
// reserves more than maxReserve up front, so a few rows with huge values
// cannot make the next large batch allocate gigabytes before holding any.
type sizeHints struct{ perRow []atomic.Int64 }

const (
	hintRows   = 1024    // a batch of this many rows or more sets a hint alone
	maxReserve = 4 << 20 // bytes one column reserves at most
)

func newSizeHints(t *schema.Table) *sizeHints {
	return &sizeHints{perRow: make([]atomic.Int64, t.Schema.NumFields())}
}

// reserve sizes the builders of b for n rows.
func (h *sizeHints) reserve(b *array.RecordBuilder, n int) {
	b.Reserve(n)
	for i, f := range b.Fields() {
		if sb := storageString(f); sb != nil {
			want := h.perRow[i].Load() * int64(n) * 9 / 8
			sb.ReserveData(int(min(want, maxReserve)))
		}
	}
}

// learn updates the hints from a finished batch's builders.
func (h *sizeHints) learn(b *array.RecordBuilder, rows int) {
	if rows == 0 {
		return
	}
	w := int64(min(rows, hintRows))
	for i, f := range b.Fields() {
		if sb := storageString(f); sb != nil {
			cur := int64(sb.DataLen() / rows)
			old := h.perRow[i].Load()
			h.perRow[i].Store(old + (cur-old)*w/hintRows)
		}
	}
}

func storageString(b array.Builder) *array.StringBuilder {
	switch sb := b.(type) {
	case *array.StringBuilder:
		return sb
	case *array.ExtensionBuilder:
		s, _ := sb.StorageBuilder().(*array.StringBuilder)
		return s
	}
	return nil
}

// probeTries is how many rows' worth of items a probe takes before it
// starts again. Starting one costs as much as a few hundred rows (a
// builder per column), so it is not started again after each refused
// item.
const probeTries = 256

// prober holds the builder items are tried on first when rejecting item
// by item (admit). Its rows are never read: a refused item's half row
// stays in it until it starts again.
type prober[B interface{ release() }] struct {
	b     B
	live  bool
	tries int
}

func (p *prober[B]) release() {
	if p.live {
		p.b.release()
		p.live = false
	}
}

// admit appends one item — a span, a log record, a metric or one of its
// data points, n rows — to b with add. With rj set (rejecting item by
// item) it runs add on b's probe p first: an item the client got wrong is
// counted in rj, with where it is, and leaves b without half a row.
func admit[B interface {
	release()
	newProbe() B
}](b B, p *prober[B], rj *rejects, n int, where func() string, add func(B) error) error {
	if rj == nil {
		if err := add(b); err != nil {
			return fmt.Errorf("%s: %w", where(), err)
		}
		return nil
	}
	if !p.live {
		p.b, p.live, p.tries = b.newProbe(), true, 0
	}
	err := add(p.b)
	if p.tries += max(n, 1); p.tries >= probeTries {
		p.release()
	}
	if err != nil {
		return rj.refuse(n, where, err)
	}
	return add(b)
}

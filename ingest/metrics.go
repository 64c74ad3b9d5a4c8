package ingest

import (
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/strata-db/strata/engine/schema"
)

var (
	metricsTable, _ = schema.Lookup(schema.Metrics)
	metricsHints    = newSizeHints(metricsTable)
)

// metricsBuilder appends metric data points as rows of `metrics`, one row
// per point, whatever the metric type.
type metricsBuilder struct {
	b     *array.RecordBuilder
	res   resourceCols
	probe prober[*metricsBuilder] // see admit

	project, name, typ, unit, description, temporality *array.StringBuilder
	recorded, start                                    *array.TimestampBuilder
	scalar, histSum, histMin, histMax, zeroThreshold   *array.Float64Builder
	monotonic                                          *array.BooleanBuilder
	histCount, zeroCount                               *array.Int64Builder
	bucketCounts, bounds, posCounts, negCounts         *array.ListBuilder
	scale, posOffset, negOffset                        *array.Int32Builder
	quantiles, exemplars, attrs, metadata              *array.StringBuilder

	buf []byte
	win Window
}

// newMetricsBuilder returns a builder sized for about n rows.
func newMetricsBuilder(mem memory.Allocator, w Window, n int) *metricsBuilder {
	t := metricsTable
	b := array.NewRecordBuilder(mem, t.Schema)
	metricsHints.reserve(b, n)
	f64 := func(n string) *array.Float64Builder { return b.Field(t.Index(n)).(*array.Float64Builder) }
	i64 := func(n string) *array.Int64Builder { return b.Field(t.Index(n)).(*array.Int64Builder) }
	i32 := func(n string) *array.Int32Builder { return b.Field(t.Index(n)).(*array.Int32Builder) }
	list := func(n string) *array.ListBuilder { return b.Field(t.Index(n)).(*array.ListBuilder) }
	str := func(n string) *array.StringBuilder { return stringCol(b, t, n) }
	return &metricsBuilder{
		b: b, res: newResourceCols(b, t, w), metadata: str("metric_metadata"),
		project: str("project_id"), name: str("metric_name"), typ: str("metric_type"), unit: str("unit"),
		description: str("metric_description"), temporality: str("aggregation_temporality"),
		recorded:  b.Field(t.Index("recorded_timestamp")).(*array.TimestampBuilder),
		start:     b.Field(t.Index("start_timestamp")).(*array.TimestampBuilder),
		scalar:    f64("scalar_value"),
		monotonic: b.Field(t.Index("is_monotonic")).(*array.BooleanBuilder),
		histCount: i64("histogram_count"), histSum: f64("histogram_sum"),
		histMin: f64("histogram_min"), histMax: f64("histogram_max"),
		bucketCounts: list("histogram_bucket_counts"), bounds: list("histogram_explicit_bounds"),
		scale: i32("exp_histogram_scale"), zeroCount: i64("exp_histogram_zero_count"),
		zeroThreshold: f64("exp_histogram_zero_threshold"),
		posCounts:     list("exp_histogram_positive_bucket_counts"), posOffset: i32("exp_histogram_positive_bucket_counts_offset"),
		negCounts: list("exp_histogram_negative_bucket_counts"), negOffset: i32("exp_histogram_negative_bucket_counts_offset"),
		quantiles: str("quantiles"), exemplars: str("exemplars"), attrs: str("attributes"),
		win: w,
	}
}

func (mb *metricsBuilder) finish() arrow.RecordBatch {
	defer mb.release()
	n := mb.project.Len()
	if n == 0 {
		return nil
	}
	metricsHints.learn(mb.b, n)
	return mb.b.NewRecordBatch()
}

func (mb *metricsBuilder) release() {
	mb.b.Release()
	mb.probe.release()
}

// newProbe is a builder for admit to try metrics and points on.
func (mb *metricsBuilder) newProbe() *metricsBuilder {
	w := mb.win
	w.Need = nil // a few rows, started again often
	return newMetricsBuilder(memory.DefaultAllocator, w, 1)
}

// pointCount is how many rows (data points) a metric makes.
func pointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

// point is what every data point type has.
type point interface {
	Attributes() pcommon.Map
	StartTimestamp() pcommon.Timestamp
	Timestamp() pcommon.Timestamp
	Flags() pmetric.DataPointFlags
}

var temporalities = [...]string{
	pmetric.AggregationTemporalityUnspecified: "",
	pmetric.AggregationTemporalityDelta:       "delta",
	pmetric.AggregationTemporalityCumulative:  "cumulative",
}

func temporality(t pmetric.AggregationTemporality) string {
	if int(t) < len(temporalities) {
		return temporalities[t]
	}
	return ""
}

// addMetrics appends the data points of md, as addTraces does spans; the
// unit refused is a metric.
func (mb *metricsBuilder) addMetrics(project string, md pmetric.Metrics, rj *rejects) error {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		res, err := newResource(rm.Resource())
		if err != nil {
			err = fmt.Errorf("resource_metrics[%d].resource: %w", i, err)
			if rj == nil {
				return err
			}
			n := 0
			for j := range rm.ScopeMetrics().Len() {
				for k := range rm.ScopeMetrics().At(j).Metrics().Len() {
					n += pointCount(rm.ScopeMetrics().At(j).Metrics().At(k))
				}
			}
			rj.add(n, err)
			continue
		}
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			sm := sms.At(j)
			sc, err := newScope(sm.Scope())
			if err != nil {
				err = fmt.Errorf("resource_metrics[%d].scope_metrics[%d]: %w", i, j, err)
				if rj == nil {
					return err
				}
				n := 0
				for k := range sm.Metrics().Len() {
					n += pointCount(sm.Metrics().At(k))
				}
				rj.add(n, err)
				continue
			}
			ms := sm.Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				where := func() string { return fmt.Sprintf("resource_metrics[%d].scope_metrics[%d].metrics[%d]", i, j, k) }
				if rj == nil || checkMetric(m) != nil {
					if err := admit(mb, &mb.probe, rj, pointCount(m), where, func(b *metricsBuilder) error { return b.addMetric(project, &res, &sc, m, -1) }); err != nil {
						return err
					}
					continue
				}
				// Rejecting one by one, a good metric's bad points are.
				for p := range pointCount(m) {
					if err := admit(mb, &mb.probe, rj, 1, where, func(b *metricsBuilder) error { return b.addMetric(project, &res, &sc, m, p) }); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// checkMetric checks what a metric's points share.
func checkMetric(m pmetric.Metric) error {
	if m.Name() == "" {
		return badInput("metric name is empty")
	}
	for field, s := range map[string]string{"name": m.Name(), "unit": m.Unit(), "description": m.Description()} {
		if err := checkString(field, s); err != nil {
			return err
		}
	}
	if m.Type() == pmetric.MetricTypeEmpty {
		return badInput("metric %q has no data", m.Name())
	}
	return nil
}

// addMetric appends m's data points: all of them, or with only ≥ 0 the
// point at that index alone, of a metric the caller checked.
func (mb *metricsBuilder) addMetric(project string, res *resource, sc *scope, m pmetric.Metric, only int) error {
	if only < 0 {
		if err := checkMetric(m); err != nil {
			return err
		}
	}
	var meta []byte // the metric's metadata, JSON: every point repeats it
	if m.Metadata().Len() > 0 {
		var err error
		if meta, err = appendMap(nil, m.Metadata(), 0); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	// points is the range of indices to append: one, when only is set (a
	// loop over all of them that skipped the others made rejecting point by
	// point quadratic: 12 s for one bad point among 100,000).
	points := func(n int) (lo, hi int) {
		if only >= 0 {
			return only, min(only+1, n)
		}
		return 0, n
	}
	// begin appends the columns every point has; each type then appends its own.
	begin := func(p point, typ, temp string, idx int) error {
		if err := checkTime(fmt.Sprintf("data_points[%d].time_unix_nano", idx), p.Timestamp(), mb.win); err != nil {
			return err
		}
		mb.project.Append(project)
		mb.recorded.Append(micros(p.Timestamp()))
		if p.StartTimestamp() == 0 {
			mb.start.AppendNull()
		} else {
			// A counter may have started before the retention window, but
			// not after the point, nor past 2^63 ns (it would wrap).
			if st := p.StartTimestamp(); uint64(st) > uint64(p.Timestamp()) {
				return badInput("data_points[%d].start_time_unix_nano %d is after its time_unix_nano %d", idx, uint64(st), uint64(p.Timestamp()))
			}
			mb.start.Append(micros(p.StartTimestamp()))
		}
		mb.name.Append(m.Name())
		mb.typ.Append(typ)
		appendOpt(mb.unit, m.Unit())
		appendOpt(mb.description, m.Description())
		appendOpt(mb.temporality, temp)
		if p.Attributes().Len() == 0 {
			mb.attrs.AppendNull()
		} else {
			var err error
			if mb.buf, err = appendMap(mb.buf[:0], p.Attributes(), 0); err != nil {
				return fmt.Errorf("data_points[%d]: %w", idx, err)
			}
			mb.attrs.BinaryBuilder.Append(mb.buf)
		}
		appendJSON(mb.metadata, meta)
		return mb.res.append(res, sc, len(m.Name())+len(m.Unit())+len(m.Description())+len(meta))
	}
	// marker appends a point flagged "no recorded value", a staleness
	// marker (its series ended, e.g. a Prometheus target went away), with
	// every value column NULL; the caller appends is_monotonic.
	marker := func(p point, typ, temp string, idx int) error {
		if err := begin(p, typ, temp, idx); err != nil {
			return err
		}
		mb.scalar.AppendNull()
		mb.nullHistogram()
		mb.nullExpHistogram()
		mb.quantiles.AppendNull()
		mb.exemplars.AppendNull()
		return nil
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		lo, hi := points(dps.Len())
		for i := lo; i < hi; i++ {
			p := dps.At(i)
			if p.Flags().NoRecordedValue() {
				if err := marker(p, "gauge", "", i); err != nil {
					return err
				}
				mb.monotonic.AppendNull()
				continue
			}
			if err := begin(p, "gauge", "", i); err != nil {
				return err
			}
			mb.monotonic.AppendNull()
			if err := mb.number(p, i); err != nil {
				return err
			}
			mb.nullHistogram()
			mb.nullExpHistogram()
			mb.quantiles.AppendNull()
		}
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		dps := sum.DataPoints()
		lo, hi := points(dps.Len())
		for i := lo; i < hi; i++ {
			p := dps.At(i)
			if p.Flags().NoRecordedValue() {
				if err := marker(p, "sum", temporality(sum.AggregationTemporality()), i); err != nil {
					return err
				}
				mb.monotonic.Append(sum.IsMonotonic())
				continue
			}
			if err := begin(p, "sum", temporality(sum.AggregationTemporality()), i); err != nil {
				return err
			}
			mb.monotonic.Append(sum.IsMonotonic())
			if err := mb.number(p, i); err != nil {
				return err
			}
			mb.nullHistogram()
			mb.nullExpHistogram()
			mb.quantiles.AppendNull()
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		dps := h.DataPoints()
		lo, hi := points(dps.Len())
		for i := lo; i < hi; i++ {
			p := dps.At(i)
			if p.Flags().NoRecordedValue() {
				if err := marker(p, "histogram", temporality(h.AggregationTemporality()), i); err != nil {
					return err
				}
				mb.monotonic.AppendNull()
				continue
			}
			if p.BucketCounts().Len() != 0 && p.BucketCounts().Len() != p.ExplicitBounds().Len()+1 {
				return badInput("data_points[%d]: %d bucket counts for %d explicit bounds, want bounds+1",
					i, p.BucketCounts().Len(), p.ExplicitBounds().Len())
			}
			if err := begin(p, "histogram", temporality(h.AggregationTemporality()), i); err != nil {
				return err
			}
			mb.monotonic.AppendNull()
			mb.scalar.AppendNull()
			mb.histCount.Append(clampInt64(p.Count()))
			optFloat(mb.histSum, p.Sum(), p.HasSum())
			optFloat(mb.histMin, p.Min(), p.HasMin())
			optFloat(mb.histMax, p.Max(), p.HasMax())
			appendUints(mb.bucketCounts, p.BucketCounts())
			mb.bounds.Append(true)
			mb.bounds.ValueBuilder().(*array.Float64Builder).AppendValues(p.ExplicitBounds().AsRaw(), nil)
			mb.nullExpHistogram()
			mb.quantiles.AppendNull()
			if err := mb.appendExemplars(p.Exemplars(), i); err != nil {
				return err
			}
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		dps := h.DataPoints()
		lo, hi := points(dps.Len())
		for i := lo; i < hi; i++ {
			p := dps.At(i)
			if p.Flags().NoRecordedValue() {
				if err := marker(p, "exponential_histogram", temporality(h.AggregationTemporality()), i); err != nil {
					return err
				}
				mb.monotonic.AppendNull()
				continue
			}
			if err := begin(p, "exponential_histogram", temporality(h.AggregationTemporality()), i); err != nil {
				return err
			}
			mb.monotonic.AppendNull()
			mb.scalar.AppendNull()
			mb.histCount.Append(clampInt64(p.Count()))
			optFloat(mb.histSum, p.Sum(), p.HasSum())
			optFloat(mb.histMin, p.Min(), p.HasMin())
			optFloat(mb.histMax, p.Max(), p.HasMax())
			mb.bucketCounts.AppendNull()
			mb.bounds.AppendNull()
			mb.scale.Append(p.Scale())
			mb.zeroCount.Append(clampInt64(p.ZeroCount()))
			mb.zeroThreshold.Append(p.ZeroThreshold())
			appendUints(mb.posCounts, p.Positive().BucketCounts())
			mb.posOffset.Append(p.Positive().Offset())
			appendUints(mb.negCounts, p.Negative().BucketCounts())
			mb.negOffset.Append(p.Negative().Offset())
			mb.quantiles.AppendNull()
			if err := mb.appendExemplars(p.Exemplars(), i); err != nil {
				return err
			}
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		lo, hi := points(dps.Len())
		for i := lo; i < hi; i++ {
			p := dps.At(i)
			if p.Flags().NoRecordedValue() {
				if err := marker(p, "summary", "", i); err != nil {
					return err
				}
				mb.monotonic.AppendNull()
				continue
			}
			if err := begin(p, "summary", "", i); err != nil {
				return err
			}
			mb.monotonic.AppendNull()
			mb.scalar.AppendNull()
			mb.histCount.Append(clampInt64(p.Count()))
			mb.histSum.Append(p.Sum())
			mb.histMin.AppendNull()
			mb.histMax.AppendNull()
			mb.bucketCounts.AppendNull()
			mb.bounds.AppendNull()
			mb.nullExpHistogram()
			qs := p.QuantileValues()
			b := append(mb.buf[:0], '[')
			for q := range qs.Len() {
				if q > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"quantile":`...)
				b = appendFloat(b, qs.At(q).Quantile())
				b = append(b, `,"value":`...)
				b = appendFloat(b, qs.At(q).Value())
				b = append(b, '}')
			}
			mb.buf = append(b, ']')
			mb.quantiles.BinaryBuilder.Append(mb.buf)
			mb.exemplars.AppendNull()
		}
	}
	return nil
}

// number appends a gauge or sum point's value and exemplars.
func (mb *metricsBuilder) number(p pmetric.NumberDataPoint, idx int) error {
	switch p.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		mb.scalar.Append(float64(p.IntValue()))
	case pmetric.NumberDataPointValueTypeDouble:
		mb.scalar.Append(p.DoubleValue())
	default:
		mb.scalar.AppendNull()
	}
	return mb.appendExemplars(p.Exemplars(), idx)
}

func (mb *metricsBuilder) nullHistogram() {
	mb.histCount.AppendNull()
	mb.histSum.AppendNull()
	mb.histMin.AppendNull()
	mb.histMax.AppendNull()
	mb.bucketCounts.AppendNull()
	mb.bounds.AppendNull()
}

func (mb *metricsBuilder) nullExpHistogram() {
	mb.scale.AppendNull()
	mb.zeroCount.AppendNull()
	mb.zeroThreshold.AppendNull()
	mb.posCounts.AppendNull()
	mb.posOffset.AppendNull()
	mb.negCounts.AppendNull()
	mb.negOffset.AppendNull()
}

func optFloat(b *array.Float64Builder, v float64, ok bool) {
	if ok {
		b.Append(v)
	} else {
		b.AppendNull()
	}
}

func appendUints(l *array.ListBuilder, s pcommon.UInt64Slice) {
	l.Append(true)
	vb := l.ValueBuilder().(*array.Int64Builder)
	for i := range s.Len() {
		vb.Append(clampInt64(s.At(i)))
	}
}

func (mb *metricsBuilder) appendExemplars(es pmetric.ExemplarSlice, idx int) error {
	if es.Len() == 0 {
		mb.exemplars.AppendNull()
		return nil
	}
	b := append(mb.buf[:0], '[')
	for i := range es.Len() {
		e := es.At(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"timestamp":`...)
		b = appendTime(b, uint64(e.Timestamp()))
		b = append(b, `,"value":`...)
		if e.ValueType() == pmetric.ExemplarValueTypeInt {
			b = strconv.AppendInt(b, e.IntValue(), 10) // exact: JSON numbers are not doubles
		} else {
			b = appendFloat(b, e.DoubleValue())
		}
		if tid := e.TraceID(); !tid.IsEmpty() {
			b = append(b, `,"trace_id":"`...)
			b = append(appendHexBytes(b, tid[:]), '"')
		}
		if sid := e.SpanID(); !sid.IsEmpty() {
			b = append(b, `,"span_id":"`...)
			b = append(appendHexBytes(b, sid[:]), '"')
		}
		if e.FilteredAttributes().Len() > 0 {
			b = append(b, `,"attributes":`...)
			var err error
			if b, err = appendMap(b, e.FilteredAttributes(), 0); err != nil {
				return fmt.Errorf("data_points[%d].exemplars[%d]: %w", idx, i, err)
			}
		}
		b = append(b, '}')
	}
	mb.buf = append(b, ']')
	mb.exemplars.BinaryBuilder.Append(mb.buf)
	return nil
}

// clampInt64 stores an unsigned count in a signed column: a count past
// 2^63 (none is real) becomes the largest, not a negative number.
func clampInt64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// Package schema defines strata's tables as Arrow schemas: `records` (one
// row per span or log record) and `metrics` (one row per data point). It is
// pure Go so that every role can use it without DuckDB.
//
// Column names follow the OpenTelemetry semantic conventions and the names
// SQL-over-OTel tools already use, so existing queries keep working.
// Timestamps are microseconds, UTC. JSON columns carry the Arrow JSON
// extension type, which Parquet stores with the JSON logical type and DuckDB
// reads as JSON (so `attributes->>'http.route'` works).
package schema

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Table names.
const (
	Records = "records"
	Metrics = "metrics"
)

// Version is the tables' current schema version. Every Parquet file
// records the version it was written with (in its metadata and in the
// catalog), and so does every WAL segment. A new version only adds
// nullable columns at the end of a table; readers of an older file or
// segment fill the columns it lacks with NULL (see Table.Conform), so a
// lake written by several versions reads as one table.
//
// Version 2 added the OTLP fields version 1 dropped: scope attributes,
// trace state and flags, a log's observed time, dropped counts, and a
// metric's metadata.
const Version = 2

var (
	// Timestamp is the type of every time column.
	Timestamp = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	// JSON is the type of every JSON column.
	JSON = mustJSON()
)

func mustJSON() arrow.DataType {
	t, err := extensions.NewJSONType(arrow.BinaryTypes.String)
	if err != nil {
		panic(err)
	}
	return t
}

func col(name string, t arrow.DataType, nullable bool) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: nullable}
}

var (
	str     = arrow.BinaryTypes.String
	f64     = arrow.PrimitiveTypes.Float64
	i32     = arrow.PrimitiveTypes.Int32
	i64     = arrow.PrimitiveTypes.Int64
	boolean = arrow.FixedWidthTypes.Boolean
)

// Promoted is a hot attribute copied into a column of its own, so that
// dashboards filter and group on it without parsing JSON. The attribute also
// stays in `attributes`. Keys lists the semantic-convention names, newest
// first; the first one present wins.
type Promoted struct {
	Column string
	Keys   []string
	Int    bool // an integer column; otherwise a string column
}

// PromotedAttributes are the promoted columns of `records`, in column order.
var PromotedAttributes = []Promoted{
	{Column: "http_method", Keys: []string{"http.request.method", "http.method"}},
	{Column: "http_route", Keys: []string{"http.route"}},
	{Column: "http_status_code", Keys: []string{"http.response.status_code", "http.status_code"}, Int: true},
	{Column: "url_full", Keys: []string{"url.full", "http.url"}},
	{Column: "server_address", Keys: []string{"server.address", "net.peer.name"}},
	{Column: "db_system", Keys: []string{"db.system.name", "db.system"}},
	{Column: "db_operation", Keys: []string{"db.operation.name", "db.operation"}},
	{Column: "rpc_system", Keys: []string{"rpc.system"}},
	{Column: "rpc_service", Keys: []string{"rpc.service"}},
	{Column: "rpc_method", Keys: []string{"rpc.method"}},
	{Column: "messaging_system", Keys: []string{"messaging.system"}},
}

// resourceColumns are shared by both tables, in this order, after the
// table's own columns.
func resourceColumns() []arrow.Field {
	return []arrow.Field{
		col("otel_scope_name", str, true),
		col("otel_scope_version", str, true),
		col("otel_resource_attributes", JSON, true),
		col("service_name", str, false),
		col("service_version", str, true),
		col("service_namespace", str, true),
		col("service_instance_id", str, true),
		col("deployment_environment", str, true),
		col("process_pid", i64, true),
		col("telemetry_sdk_name", str, true),
		col("telemetry_sdk_language", str, true),
		col("telemetry_sdk_version", str, true),
	}
}

// recordsAdded are the columns of records each version after the first
// added: recordsAdded[0] by version 2, and so on.
var recordsAdded = [][]arrow.Field{
	{ // version 2
		col("otel_scope_attributes", JSON, true),
		col("trace_state", str, true),
		col("trace_flags", i64, true),              // W3C trace flags; bits 8-9 of a span's say whether its parent is remote
		col("observed_timestamp", Timestamp, true), // logs: when the collector saw the record
		col("dropped_attributes_count", i64, true),
		col("dropped_events_count", i64, true),
		col("dropped_links_count", i64, true),
	},
}

// metricsAdded are the columns of metrics each version after the first
// added.
var metricsAdded = [][]arrow.Field{
	{ // version 2
		col("otel_scope_attributes", JSON, true),
		col("metric_metadata", JSON, true),
	},
}

func recordsSchema() *arrow.Schema {
	fields := []arrow.Field{
		col("project_id", str, false),
		col("start_timestamp", Timestamp, false),
		col("end_timestamp", Timestamp, true),
		col("duration", f64, true), // seconds
		col("trace_id", str, true), // lower-case hex, 32 characters
		col("span_id", str, true),  // lower-case hex, 16 characters
		col("parent_span_id", str, true),
		col("kind", str, false), // 'span' | 'log' | 'span_event'
		col("span_kind", str, true),
		col("level", i32, false), // OTel severity number; spans: 9 (info) or 17 (error)
		col("severity_text", str, true),
		col("span_name", str, true),
		col("message", str, true),
		col("log_body", JSON, true),
		col("otel_status_code", str, true), // 'UNSET' | 'OK' | 'ERROR'
		col("otel_status_message", str, true),
		col("is_exception", boolean, false),
		col("exception_type", str, true),
		col("exception_message", str, true),
		col("exception_stacktrace", str, true),
		col("tags", arrow.ListOf(str), true),
		col("attributes", JSON, true),
		col("otel_events", JSON, true),
		col("otel_links", JSON, true),
	}
	fields = append(fields, resourceColumns()...)
	for _, p := range PromotedAttributes {
		if p.Int {
			fields = append(fields, col(p.Column, i64, true))
		} else {
			fields = append(fields, col(p.Column, str, true))
		}
	}
	return arrow.NewSchema(fields, nil)
}

// versioned appends the columns every later version added to a version 1
// schema, and counts the columns of each version: columns[v] for version v.
func versioned(v1 *arrow.Schema, added [][]arrow.Field) (current *arrow.Schema, columns []int) {
	fields := v1.Fields()
	columns = []int{0, len(fields)}
	for _, a := range added {
		fields = append(fields, a...)
		columns = append(columns, len(fields))
	}
	return arrow.NewSchema(fields, nil), columns
}

func metricsSchema() *arrow.Schema {
	fields := []arrow.Field{
		col("project_id", str, false),
		col("recorded_timestamp", Timestamp, false),
		col("start_timestamp", Timestamp, true),
		col("metric_name", str, false),
		col("metric_type", str, false), // 'gauge' | 'sum' | 'histogram' | 'exponential_histogram' | 'summary'
		col("unit", str, true),
		col("metric_description", str, true),
		col("scalar_value", f64, true),
		col("is_monotonic", boolean, true),
		col("aggregation_temporality", str, true), // 'delta' | 'cumulative'
		col("histogram_count", i64, true),
		col("histogram_sum", f64, true),
		col("histogram_min", f64, true),
		col("histogram_max", f64, true),
		col("histogram_bucket_counts", arrow.ListOf(i64), true),
		col("histogram_explicit_bounds", arrow.ListOf(f64), true),
		col("exp_histogram_scale", i32, true),
		col("exp_histogram_zero_count", i64, true),
		col("exp_histogram_zero_threshold", f64, true),
		col("exp_histogram_positive_bucket_counts", arrow.ListOf(i64), true),
		col("exp_histogram_positive_bucket_counts_offset", i32, true),
		col("exp_histogram_negative_bucket_counts", arrow.ListOf(i64), true),
		col("exp_histogram_negative_bucket_counts_offset", i32, true),
		col("quantiles", JSON, true),
		col("exemplars", JSON, true),
		col("attributes", JSON, true),
	}
	fields = append(fields, resourceColumns()...)
	return arrow.NewSchema(fields, nil)
}

// Table describes one table.
type Table struct {
	Name string
	// Schema is the current version's; older versions' are prefixes of it.
	Schema *arrow.Schema
	// columns[v] is how many columns version v has.
	columns []int
	// TimeColumn is the row's timestamp: it decides the hour partition and
	// the file's time range in the catalog.
	TimeColumn string
	// SortColumns is the order of rows in every Parquet file. Records sort by
	// service then time; metrics by service, metric, then time, so one
	// metric's series are contiguous.
	SortColumns []string
	// BloomColumns get a Parquet bloom filter (point lookups).
	BloomColumns []string
	// PlainColumns are (nearly) unique per row — random ids, JSON
	// attributes, URLs, nanosecond timestamps — and skip dictionary
	// encoding, which only costs space and time on them (timestamps: an
	// hour file 4 % smaller, a level-0 flush 3 % cheaper).
	PlainColumns []string
	// NoStatsColumns get no min/max statistics: long text and JSON, whose
	// bounds no query prunes on, and which are costly to compare.
	NoStatsColumns []string
}

var tables = map[string]*Table{
	Records: {
		Name: Records, TimeColumn: "start_timestamp",
		SortColumns:  []string{"service_name", "start_timestamp"},
		BloomColumns: []string{"trace_id"},
		PlainColumns: []string{"trace_id", "span_id", "parent_span_id", "attributes", "otel_events", "otel_links",
			"log_body", "url_full", "exception_stacktrace", "start_timestamp", "end_timestamp"},
		NoStatsColumns: []string{"message", "log_body", "attributes", "otel_events", "otel_links", "url_full",
			"exception_message", "exception_stacktrace", "otel_resource_attributes", "otel_scope_attributes"},
	},
	Metrics: {
		Name: Metrics, TimeColumn: "recorded_timestamp",
		SortColumns:    []string{"service_name", "metric_name", "recorded_timestamp"},
		NoStatsColumns: []string{"attributes", "exemplars", "quantiles", "otel_resource_attributes", "otel_scope_attributes", "metric_metadata"},
	},
}

func init() {
	tables[Records].Schema, tables[Records].columns = versioned(recordsSchema(), recordsAdded)
	tables[Metrics].Schema, tables[Metrics].columns = versioned(metricsSchema(), metricsAdded)
}

// SchemaAt returns the table's schema as version v wrote it.
func (t *Table) SchemaAt(v int) (*arrow.Schema, error) {
	if v < 1 || v >= len(t.columns) {
		return nil, fmt.Errorf("table %s: unknown schema version %d (this build knows 1 to %d)", t.Name, v, Version)
	}
	return arrow.NewSchema(t.Schema.Fields()[:t.columns[v]], nil), nil
}

// AddedSince returns the columns added after version v (none for the
// current version).
func (t *Table) AddedSince(v int) []arrow.Field {
	if v < 1 || v >= len(t.columns) {
		return nil
	}
	return t.Schema.Fields()[t.columns[v]:]
}

// VersionOf returns the version whose schema has the columns of s, in
// order, or an error if s is no version of the table's schema.
func (t *Table) VersionOf(s *arrow.Schema) (int, error) {
	for v := len(t.columns) - 1; v >= 1; v-- {
		if t.columns[v] != s.NumFields() {
			continue
		}
		for i, f := range s.Fields() {
			if f.Name != t.Schema.Field(i).Name {
				return 0, fmt.Errorf("table %s: column %d is %q, want %q", t.Name, i, f.Name, t.Schema.Field(i).Name)
			}
		}
		return v, nil
	}
	return 0, fmt.Errorf("table %s: %d columns match no schema version", t.Name, s.NumFields())
}

// Conform returns rec, rows of the table as some version wrote them (a
// file, a WAL segment, another node's answer), with exactly the columns of
// s — the table's schema or a projection of it — matched by name: a
// column rec lacks is NULL, one s does not have is left out. A batch that
// has s's columns already is returned as is, retained: the caller
// releases the result either way.
func (t *Table) Conform(mem memory.Allocator, rec arrow.RecordBatch, s *arrow.Schema) (arrow.RecordBatch, error) {
	have := rec.Schema()
	same := have.NumFields() == s.NumFields()
	cols := make([]arrow.Array, s.NumFields())
	for i, f := range s.Fields() {
		j := have.FieldIndices(f.Name)
		if len(j) != 1 {
			same = false
			cols[i] = array.MakeArrayOfNull(mem, f.Type, int(rec.NumRows()))
			defer cols[i].Release()
			continue
		}
		c := rec.Column(j[0])
		if !arrow.TypeEqual(c.DataType(), f.Type) {
			return nil, fmt.Errorf("table %s: column %s is %s, want %s", t.Name, f.Name, c.DataType(), f.Type)
		}
		same = same && j[0] == i
		cols[i] = c
	}
	if same {
		rec.Retain()
		return rec, nil
	}
	return array.NewRecordBatch(s, cols, rec.NumRows()), nil
}

// Lookup returns the named table.
func Lookup(name string) (*Table, error) {
	t, ok := tables[name]
	if !ok {
		return nil, fmt.Errorf("unknown table %q: want %q or %q", name, Records, Metrics)
	}
	return t, nil
}

// Tables lists every table, records first.
func Tables() []*Table { return []*Table{tables[Records], tables[Metrics]} }

// Index returns the position of a column in the table's schema; it panics if
// the column does not exist, which is a programming error.
func (t *Table) Index(column string) int {
	idx := t.Schema.FieldIndices(column)
	if len(idx) != 1 {
		panic(fmt.Sprintf("table %s has no column %q", t.Name, column))
	}
	return idx[0]
}

// SQLType is the DuckDB type of a column, for views over no files.
func SQLType(t arrow.DataType) string {
	switch t := t.(type) {
	case *extensions.JSONType:
		return "JSON"
	case *arrow.StringType:
		return "VARCHAR"
	case *arrow.TimestampType:
		return "TIMESTAMP WITH TIME ZONE"
	case *arrow.Float64Type:
		return "DOUBLE"
	case *arrow.Int32Type:
		return "INTEGER"
	case *arrow.Int64Type:
		return "BIGINT"
	case *arrow.BooleanType:
		return "BOOLEAN"
	case *arrow.ListType:
		return SQLType(t.Elem()) + "[]"
	}
	panic(fmt.Sprintf("no SQL type for %s", t))
}

// HasTraceID says whether the table's files are indexed by trace id: a
// bloom filter on trace_id and a per-file trace filter.
func (t *Table) HasTraceID() bool { return slices.Contains(t.BloomColumns, "trace_id") }

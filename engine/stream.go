//go:build duckdb_arrow

package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	bindings "github.com/duckdb/duckdb-go-bindings"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/duckdb/duckdb-go/v2/arrowmapping"
	"github.com/duckdb/duckdb-go/v2/mapping"
)

// Streaming execution. duckdb-go runs every query with DuckDB's
// non-streaming pending API: DuckDB builds the whole result, outside its
// memory limit, before the first row can be read. A query here runs with
// the streaming API instead, so a batch is computed when the reader asks
// for it: the first batch of a big result leaves at once, memory holds a
// few batches, and a reader that stops (a client hanging up, a row bound)
// stops DuckDB.

// rawConn is the C connection inside a duckdb-go connection, which
// duckdb-go does not export. Read by field name and type, so that a
// duckdb-go whose Conn changed shape fails loudly here (Open checks it)
// rather than reading the wrong memory.
func rawConn(c *duckdb.Conn) (mapping.Connection, error) {
	f := reflect.ValueOf(c).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeOf(mapping.Connection{}) {
		return mapping.Connection{}, errors.New("duckdb-go's Conn has no field conn of type mapping.Connection: streaming needs updating for this duckdb-go")
	}
	return *(*mapping.Connection)(unsafe.Pointer(f.UnsafeAddr())), nil
}

// streamReader is a query's result read a DuckDB chunk (2,048 rows) at a
// time as Arrow record batches.
type streamReader struct {
	res    mapping.Result
	opts   arrowmapping.ArrowOptions
	schema *arrow.Schema
	// chunkSchema is the schema chunks convert to; schema differs from it
	// in the JSON columns at jsonCols, which carry the arrow.json type.
	chunkSchema *arrow.Schema
	jsonCols    []int
	stop        func() // ends the interrupt watch
	cur         arrow.RecordBatch
	err         error
	ended       bool // read to its end, or released (res is gone)
	once        sync.Once
	// again starts the query once more, after waitMemory: DuckDB's memory
	// limit is one pool for all queries, and a query that failed for want
	// of memory before its first row, most often because another held it,
	// runs again once memory was given back, up to maxReruns times in all.
	again   func() (mapping.Result, bool)
	fetched bool // a chunk was returned: too late to start again
}

// maxReruns bounds how often a query starts again for want of memory:
// while several big queries take turns at the pool, a small one may lose
// more than one race for it (seen in the sandbox test, with three big
// queries beside it). One too big on its own waitMemory stops after one.
const maxReruns = 3

// rerunHook, if set, is called at each rerun (tests count them).
var rerunHook func()

// stream prepares sql on conn and starts it as a streaming query. While
// the query runs or is read, ctx's end interrupts it. If it fails for want
// of memory before its first row, and waitMemory (nil: never) says memory
// was given back since, it starts again (up to maxReruns times).
func stream(ctx context.Context, conn *duckdb.Conn, sql string, waitMemory func(reruns int) bool) (*streamReader, error) {
	raw, err := rawConn(conn)
	if err != nil {
		return nil, err
	}
	stop := watchInterrupt(ctx, raw)
	reruns := 0
	again := func() (mapping.Result, bool) {
		for reruns < maxReruns && waitMemory != nil && waitMemory(reruns) {
			reruns++
			if rerunHook != nil {
				rerunHook()
			}
			res, err := start(raw, sql, true)
			if err == nil {
				return res, true
			}
			if !isOutOfMemory(err) {
				break
			}
		}
		return mapping.Result{}, false
	}
	res, err := start(raw, sql, true)
	if isOutOfMemory(err) {
		if retried, ok := again(); ok {
			res, err = retried, nil
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	r := &streamReader{res: res, opts: arrowmapping.ResultGetArrowOptions(&res), stop: stop, again: again}
	n := mapping.ColumnCount(&res)
	names := make([]string, n)
	types := make([]mapping.LogicalType, n)
	var jsonCols []int
	for i := range n {
		names[i] = mapping.ColumnName(&res, i)
		types[i] = mapping.ColumnLogicalType(&res, i)
		if mapping.LogicalTypeGetAlias(types[i]) == "JSON" {
			jsonCols = append(jsonCols, int(i))
		}
	}
	schema, ed := arrowmapping.NewArrowSchema(r.opts, types, names)
	for i := range types {
		mapping.DestroyLogicalType(&types[i])
	}
	if err := errorData(ed); err != nil {
		r.Release()
		return nil, fmt.Errorf("arrow schema of the result: %w", err)
	}
	r.schema, r.chunkSchema = schema, schema
	if len(jsonCols) > 0 {
		// DuckDB sends JSON as plain text (only its lossless mode, which
		// changes booleans too, keeps the type): mark those columns JSON
		// again, so that results embed their values as JSON.
		fields := schema.Fields()
		for _, i := range jsonCols {
			if jt, err := extensions.NewJSONType(fields[i].Type); err == nil {
				fields[i].Type = jt
				r.jsonCols = append(r.jsonCols, i)
			}
		}
		md := schema.Metadata()
		r.schema = arrow.NewSchema(fields, &md)
	}
	return r, nil
}

// start prepares sql and executes it, streaming or to its end. It never
// leaves a query behind: once a pending query exists it is executed (an
// interrupt makes that quick), because a pending query dropped unexecuted
// goes on running in DuckDB's threads (duckdb-go's own execution does
// that when its context ends), reading memory its caller frees next.
func start(raw mapping.Connection, sql string, streaming bool) (mapping.Result, error) {
	var res mapping.Result
	var stmt mapping.PreparedStatement
	if mapping.Prepare(raw, sql, &stmt) == mapping.StateError {
		msg := mapping.PrepareError(stmt)
		mapping.DestroyPrepare(&stmt)
		return res, duckdbError(msg)
	}
	defer mapping.DestroyPrepare(&stmt)
	var pending mapping.PendingResult
	var state mapping.State
	if streaming {
		state = bindings.PendingPreparedStreaming(stmt, &pending) // mapping lacks it; same types
	} else {
		state = mapping.PendingPrepared(stmt, &pending)
	}
	if state == mapping.StateError {
		msg := mapping.PendingError(pending)
		mapping.DestroyPending(&pending)
		return res, duckdbError(msg)
	}
	defer mapping.DestroyPending(&pending)
	if mapping.ExecutePending(pending, &res) == mapping.StateError {
		err := resultError(&res)
		mapping.DestroyResult(&res)
		return res, err
	}
	return res, nil
}

// execute runs sql on conn to its end (ctx's end interrupts it) and
// returns only once DuckDB is done with it: what the statement reads (an
// Arrow stream) can be freed then.
func execute(ctx context.Context, conn *duckdb.Conn, sql string) error {
	raw, err := rawConn(conn)
	if err != nil {
		return err
	}
	stop := watchInterrupt(ctx, raw)
	defer stop()
	res, err := start(raw, sql, false)
	if err != nil {
		return err
	}
	mapping.DestroyResult(&res)
	return nil
}

func (r *streamReader) Schema() *arrow.Schema { return r.schema }

// Next computes and converts the next chunk.
func (r *streamReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil || r.ended {
		return false
	}
	chunk := mapping.FetchChunk(r.res)
	if chunk.Ptr == nil {
		// The end, or a failure DuckDB kept in the result.
		if msg := mapping.ResultError(&r.res); msg != "" {
			r.err = resultError(&r.res)
		}
		if r.again != nil && !r.fetched && isOutOfMemory(r.err) {
			if res, ok := r.again(); ok {
				mapping.DestroyResult(&r.res)
				r.res, r.err = res, nil
				return r.Next()
			}
		}
		r.ended = true // fetching past the end is an error in DuckDB
		return false
	}
	r.fetched = true
	defer mapping.DestroyDataChunk(&chunk)
	rec, ed := arrowmapping.DataChunkToArrowArray(r.opts, r.chunkSchema, chunk)
	if err := errorData(ed); err != nil {
		r.err = fmt.Errorf("arrow batch of the result: %w", err)
		return false
	}
	if len(r.jsonCols) > 0 {
		cols := append([]arrow.Array(nil), rec.Columns()...)
		for _, i := range r.jsonCols {
			cols[i] = array.NewExtensionArrayWithStorage(r.schema.Field(i).Type.(arrow.ExtensionType), cols[i])
			defer cols[i].Release()
		}
		wrapped := array.NewRecordBatch(r.schema, cols, rec.NumRows())
		rec.Release()
		rec = wrapped
	}
	r.cur = rec
	return true
}

func (r *streamReader) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *streamReader) Record() arrow.RecordBatch      { return r.cur }
func (r *streamReader) Err() error                     { return r.err }

// Retain is not supported: a result has one reader, which releases it.
func (r *streamReader) Retain() {}

// Release ends the query: DuckDB stops computing it.
func (r *streamReader) Release() {
	r.once.Do(func() {
		if r.cur != nil {
			r.cur.Release()
			r.cur = nil
		}
		r.ended = true
		r.stop()
		arrowmapping.DestroyArrowOptions(&r.opts)
		mapping.DestroyResult(&r.res)
	})
}

// watchInterrupt interrupts the connection's query once ctx ends, again
// and again until stop returns (DuckDB clears an interrupt it receives
// between two tasks). stop waits for the watch to end, so an interrupt
// never reaches the connection's next statement.
func watchInterrupt(ctx context.Context, conn mapping.Connection) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			mapping.Interrupt(conn)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-ended
		})
	}
}

func resultError(res *mapping.Result) error {
	return &duckdb.Error{Type: duckdb.ErrorType(mapping.ResultErrorType(res)), Msg: mapping.ResultError(res)}
}

func errorData(ed mapping.ErrorData) error {
	defer mapping.DestroyErrorData(&ed)
	if !mapping.ErrorDataHasError(ed) {
		return nil
	}
	return &duckdb.Error{Type: duckdb.ErrorType(mapping.ErrorDataErrorType(ed)), Msg: mapping.ErrorDataMessage(ed)}
}

// duckdbError types an error DuckDB gave only as text ("Binder Error:
// ..."), for the kinds queryError tells apart; the rest stay the user's.
func duckdbError(msg string) error {
	prefix, _, _ := strings.Cut(msg, ": ")
	t, ok := errorPrefixes[prefix]
	if !ok {
		t = duckdb.ErrorTypeInvalid
	}
	return &duckdb.Error{Type: t, Msg: msg}
}

var errorPrefixes = map[string]duckdb.ErrorType{
	"INTERNAL Error": duckdb.ErrorTypeInternal, "FATAL Error": duckdb.ErrorTypeFatal,
	"IO Error": duckdb.ErrorTypeIO, "Connection Error": duckdb.ErrorTypeConnection,
	"Out of Memory Error": duckdb.ErrorTypeOutOfMemory, "INTERRUPT Error": duckdb.ErrorTypeInterrupt,
	"Parser Error": duckdb.ErrorTypeParser, "Binder Error": duckdb.ErrorTypeBinder,
	"Catalog Error": duckdb.ErrorTypeCatalog, "Permission Error": duckdb.ErrorTypePermission,
}

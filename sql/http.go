package sql

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
)

// The HTTP query API:
//
//	POST /v1/query  {"sql": "...", "min_timestamp": "…", "max_timestamp": "…", "limit": 100}
//	GET  /v1/query?sql=...&min_timestamp=…&max_timestamp=…&limit=100
//
// The Accept header picks the format: application/json (default):
// {"columns":[{"name","type"}],"rows":[[…]],"stats":{…}}; text/csv; or
// application/vnd.apache.arrow.stream. All three stream as DuckDB produces
// rows. Errors are JSON {"error": "..."} with a 4xx for a mistake in the
// query and 429 when every query slot is busy.

const (
	formatJSON  = "application/json"
	formatCSV   = "text/csv"
	formatArrow = "application/vnd.apache.arrow.stream"
)

// Handler serves the query API.
func (e *Executor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/query", e.serveQuery)
	mux.HandleFunc("GET /v1/query", e.serveQuery)
	return mux
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", formatJSON)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: msg})
}

// parseRequest reads the query from a JSON body (POST) or the URL (GET).
func parseRequest(w http.ResponseWriter, r *http.Request) (Request, *httpError) {
	var req Request
	if r.Method == http.MethodGet || r.Method == http.MethodHead { // HEAD: GET's headers
		q := r.URL.Query()
		req.SQL = q.Get("sql")
		for name, dst := range map[string]**time.Time{"min_timestamp": &req.MinTimestamp, "max_timestamp": &req.MaxTimestamp} {
			if v := q.Get(name); v != "" {
				t, err := parseTime(v)
				if err != nil {
					return req, &httpError{http.StatusBadRequest, name + ": " + err.Error()}
				}
				*dst = &t
			}
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return req, &httpError{http.StatusBadRequest, "limit: want a whole number of rows"}
			}
			req.Limit = n
		}
	} else {
		// Room for the longest query with every character escaped (\u00e9):
		// the limit is on the SQL, checked once decoded.
		body := http.MaxBytesReader(w, r.Body, 6*MaxSQLBytes+64<<10)
		var raw struct {
			SQL          string `json:"sql"`
			MinTimestamp string `json:"min_timestamp"`
			MaxTimestamp string `json:"max_timestamp"`
			Limit        int64  `json:"limit"`
		}
		dec := json.NewDecoder(body)
		if err := dec.Decode(&raw); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return req, &httpError{http.StatusRequestEntityTooLarge, ErrTooLong.Error()}
			}
			return req, &httpError{http.StatusBadRequest, "invalid JSON body: " + err.Error()}
		}
		if dec.More() {
			return req, &httpError{http.StatusBadRequest, "invalid JSON body: more after the object; send one query per request"}
		}
		req.SQL, req.Limit = raw.SQL, raw.Limit
		for name, v := range map[string]string{"min_timestamp": raw.MinTimestamp, "max_timestamp": raw.MaxTimestamp} {
			if v == "" {
				continue
			}
			t, err := parseTime(v)
			if err != nil {
				return req, &httpError{http.StatusBadRequest, name + ": " + err.Error()}
			}
			if name == "min_timestamp" {
				req.MinTimestamp = &t
			} else {
				req.MaxTimestamp = &t
			}
		}
	}
	switch {
	case strings.TrimSpace(req.SQL) == "":
		return req, &httpError{http.StatusBadRequest, `missing "sql"`}
	case len(req.SQL) > MaxSQLBytes:
		return req, &httpError{http.StatusRequestEntityTooLarge, ErrTooLong.Error()}
	case req.Limit < 0:
		return req, &httpError{http.StatusBadRequest, "limit must not be negative"}
	}
	return req, nil
}

type httpError struct {
	status int
	msg    string
}

// parseTime accepts RFC 3339 with or without fraction and zone, or a date.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a timestamp; use RFC 3339, e.g. 2026-11-23T10:00:00Z", s)
}

func negotiate(accept string) string {
	best, bestQ := formatJSON, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case formatCSV, formatArrow, formatJSON:
		default:
			continue
		}
		// The highest quality wins (RFC 9110), the first among equals;
		// q=0 means "not this one".
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		if q > bestQ && q > 0 {
			best, bestQ = mt, q
		}
	}
	return best
}

func (e *Executor) serveQuery(w http.ResponseWriter, r *http.Request) {
	req, herr := parseRequest(w, r)
	if herr != nil {
		writeError(w, herr.status, herr.msg)
		return
	}
	// The request's context ends when the client goes away, which
	// interrupts the query in DuckDB.
	res, err := e.Run(r.Context(), catalog.DefaultProject, req)
	if err != nil {
		answerError(w, err)
		return
	}
	defer res.Release()
	if err := res.Peek(); err != nil {
		answerError(w, err)
		return
	}
	// The time limit covers sending: a client that stops reading must not
	// hold its query slot (DuckDB has stopped at the limit; a write would
	// block on the socket).
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(res.Deadline.Add(time.Second))
	defer rc.SetWriteDeadline(time.Time{})
	format := negotiate(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", format)
	if format != formatJSON {
		w.Header().Set("Trailer", "X-Strata-Stats")
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var werr error
	switch format {
	case formatCSV:
		werr = writeCSV(bw, res)
	case formatArrow:
		werr = writeArrow(bw, w, res)
	default:
		werr = writeJSON(bw, res)
	}
	bw.Flush()
	if werr != nil && r.Context().Err() == nil {
		slog.Warn("query result stream failed", "err", werr)
		if format != formatJSON {
			// Too late for a status: a JSON document ends with its error,
			// but an Arrow stream or CSV that ended cleanly would pass for
			// a whole, shorter result. Cut the transfer short instead:
			// the client sees it incomplete (after what was written: CSV's
			// last line says why).
			rc.Flush()
			panic(http.ErrAbortHandler)
		}
	}
	if format != formatJSON {
		res.Stats.ElapsedMs = time.Since(res.start).Milliseconds()
		st, _ := json.Marshal(res.Stats)
		w.Header().Set("X-Strata-Stats", string(st))
	}
}

// answerError answers a query that failed before its result began.
func answerError(w http.ResponseWriter, err error) {
	status, msg := classifyError(err)
	switch {
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrCatalogUnavailable):
		w.Header().Set("Retry-After", "5")
	}
	if status >= 500 {
		slog.Error("query failed", "err", err)
	}
	writeError(w, status, msg)
}

// classifyError maps a failed Run to an HTTP status and message.
func classifyError(err error) (int, string) {
	var qe *engine.QueryError
	switch {
	case errors.As(err, &qe): // the time and memory limits too: the query asked too much
		return http.StatusBadRequest, qe.Msg
	case errors.Is(err, ErrTooLong):
		return http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, ErrBusy):
		return http.StatusTooManyRequests, err.Error()
	case errors.Is(err, ErrCatalogUnavailable):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, context.Canceled):
		return 499, "client went away"
	}
	return http.StatusInternalServerError, err.Error()
}

// arrowFlushEvery is how long written Arrow batches may wait in buffers.
const arrowFlushEvery = 50 * time.Millisecond

// writeJSON streams {"columns":[…],"rows":[[…],…],"stats":{…}}.
func writeJSON(w io.Writer, res *Result) error {
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"columns":[`...)
	for i, f := range res.Schema().Fields() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, f.Name)
		b = append(b, `,"type":`...)
		b = appendJSONString(b, typeName(f.Type))
		b = append(b, '}')
	}
	b = append(b, `],"rows":[`...)
	var encs []valueEncoder
	var err error
	for res.Next() {
		rec := res.RecordBatch()
		if err = checkValueSizes(rec); err != nil {
			break
		}
		encs = encs[:0]
		for c := range int(rec.NumCols()) {
			encs = append(encs, encoderFor(rec.Column(c)))
		}
		n := rec.NumRows()
		for i := range int(n) {
			if res.Stats.Rows > 0 || i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for c, enc := range encs {
				if c > 0 {
					b = append(b, ',')
				}
				b = enc(b, i)
			}
			b = append(b, ']')
			if len(b) > 48<<10 {
				if _, err := w.Write(b); err != nil {
					return err
				}
				b = b[:0]
			}
		}
		res.Stats.Rows += n
	}
	b = append(b, ']')
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		// Too late for a status code: end the document with the error.
		b = append(b, `,"error":`...)
		b = appendJSONString(b, err.Error())
		b = append(b, '}')
		w.Write(b)
		return err
	}
	res.Stats.ElapsedMs = time.Since(res.start).Milliseconds()
	st, _ := json.Marshal(res.Stats)
	b = append(b, `,"stats":`...)
	b = append(b, st...)
	b = append(b, '}')
	_, err = w.Write(b)
	return err
}

// writeCSV streams a header row and one line per row, quoted as
// PostgreSQL's COPY … CSV quotes them: NULL is an empty field and an
// empty string "".
func writeCSV(w io.Writer, res *Result) error {
	c := &copyOut{csv: true, delim: ',', quote: '"', esc: '"'}
	fields := res.Schema().Fields()
	vals := make([][]byte, len(fields))
	for i, f := range fields {
		vals[i] = []byte(f.Name)
	}
	buf := c.appendRow(nil, vals, true)
	scratch := make([][]byte, len(fields)) // never nil: nil is NULL
	for i := range scratch {
		scratch[i] = make([]byte, 0, 64)
	}
	var err error
	for res.Next() {
		rec := res.RecordBatch()
		if err = checkValueSizes(rec); err != nil {
			break
		}
		n := rec.NumRows()
		for i := range int(n) {
			for c := range vals {
				vals[c] = nil
				if a := rec.Column(c); !a.IsNull(i) {
					scratch[c] = append(scratch[c][:0], csvValue(a, i)...)
					vals[c] = scratch[c]
				}
			}
			buf = c.appendRow(buf, vals, false)
			if len(buf) >= 64<<10 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		res.Stats.Rows += n
	}
	if _, werr := w.Write(buf); werr != nil && err == nil {
		return werr
	}
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		fmt.Fprintf(w, "# error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return err
}

// csvValue is the text of a value that is not NULL.
func csvValue(a arrow.Array, i int) string {
	switch c := a.(type) {
	case *array.String:
		return c.Value(i)
	case *array.Timestamp:
		return string(appendTimestamp(nil, c.Value(i), c.DataType().(*arrow.TimestampType)))
	case *array.Date32:
		return string(appendDate(nil, c.Value(i)))
	case *array.Decimal128:
		return string(appendDecimal(nil, c.Value(i), c.DataType().(*arrow.Decimal128Type).Scale))
	case *array.MonthDayNanoInterval:
		return string(appendPGInterval(nil, c.Value(i)))
	case *array.Float64:
		return csvFloat(c.Value(i), 64)
	case *array.Float32:
		return csvFloat(float64(c.Value(i)), 32)
	case *array.List, *array.Struct:
		return string(encoderFor(a)(nil, i))
	}
	return a.ValueStr(i)
}

// csvFloat writes a float as PostgreSQL's COPY does: NaN and the
// infinities by name (not Go's +Inf), and 1234567, not 1.234567e+06.
func csvFloat(f float64, bits int) string {
	if name := floatName(f); name != "" {
		return name
	}
	return string(appendPGFloat(nil, f, bits))
}

// writeArrow streams an Arrow IPC stream. The first batch is sent at once,
// then what was written is sent every arrowFlushEvery, also while DuckDB
// computes the next batch: a client sees rows as they come, without a
// write per 2,048-row batch.
func writeArrow(w *bufio.Writer, flusher http.ResponseWriter, res *Result) error {
	var mu sync.Mutex // w, the flusher and dirty, between this and the ticker
	dirty := false
	flush := func() {
		w.Flush()
		if f, ok := flusher.(http.Flusher); ok {
			f.Flush()
		}
		dirty = false
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(arrowFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				if dirty {
					flush()
				}
				mu.Unlock()
			}
		}
	}()
	defer func() { close(stop); <-stopped }()

	mu.Lock()
	defer mu.Unlock()
	iw := ipc.NewWriter(w, ipc.WithSchema(res.Schema()))
	first := true
	for nextUnlocked(&mu, res) {
		rec := res.RecordBatch()
		n := rec.NumRows()
		if err := iw.Write(rec); err != nil {
			return err
		}
		res.Stats.Rows += n
		dirty = true
		if first {
			flush()
			first = false
		}
	}
	if err := res.Err(); err != nil {
		return err // no end-of-stream marker: the stream is not whole
	}
	return iw.Close()
}

// nextUnlocked reads the next batch with mu unlocked, so that what was
// written can be sent while DuckDB computes it.
func nextUnlocked(mu *sync.Mutex, res *Result) bool {
	mu.Unlock()
	defer mu.Lock()
	return res.Next()
}

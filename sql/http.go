package sql

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
)

// MaxSQLBytes bounds the text of one query.
const MaxSQLBytes = 1 << 20

// Handler serves POST /v1/query with a JSON body {"sql": "..."} and answers
// {"columns":[{"name","type"}],"rows":[[…]]}, streamed as DuckDB produces it.
func (e *Executor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/query", e.serveQuery)
	return mux
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: msg})
}

func (e *Executor) serveQuery(w http.ResponseWriter, r *http.Request) {
	var req Request
	body := http.MaxBytesReader(w, r.Body, MaxSQLBytes+4096)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request exceeds %d bytes", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if req.SQL == "" {
		writeError(w, http.StatusBadRequest, `missing "sql"`)
		return
	}
	if len(req.SQL) > MaxSQLBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("sql is %d bytes, the limit is %d", len(req.SQL), MaxSQLBytes))
		return
	}
	rows, err := e.Run(r.Context(), catalog.DefaultProject, req)
	if err != nil {
		var qe *engine.QueryError
		if errors.As(err, &qe) {
			writeError(w, http.StatusBadRequest, qe.Msg)
			return
		}
		slog.Error("query failed", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer rows.Release()
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := writeJSON(bw, rows); err != nil {
		// Headers are gone; the truncated body tells the client.
		slog.Warn("query result stream failed", "err", err)
	}
	bw.Flush()
}

// writeJSON streams rows as {"columns":[…],"rows":[[…],…]}.
func writeJSON(w io.Writer, rows *engine.Rows) error {
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"columns":[`...)
	for i, f := range rows.Schema().Fields() {
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
	first := true
	encs := []valueEncoder{}
	for rows.Next() {
		rec := rows.RecordBatch()
		encs = encs[:0]
		for c := range int(rec.NumCols()) {
			encs = append(encs, encoderFor(rec.Column(c)))
		}
		for i := range int(rec.NumRows()) {
			if !first {
				b = append(b, ',')
			}
			first = false
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
	}
	if err := rows.Err(); err != nil {
		// Too late for a status code: end the document with the error.
		b = append(b, `],"error":`...)
		b = appendJSONString(b, err.Error())
		b = append(b, '}')
		w.Write(b)
		return err
	}
	b = append(b, "]}"...)
	_, err := w.Write(b)
	return err
}

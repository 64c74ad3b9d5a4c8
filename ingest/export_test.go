package ingest

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-db/strata/engine/schema"
)

// ReuploadAfter lets tests shorten how long a flush waits for the catalog
// before uploading its files again.
var ReuploadAfter = &reuploadAfter

// RetentionRefresh lets tests shorten how often a project's retention is
// read again.
var RetentionRefresh = &retentionRefresh

// RawMessage and RawCodec let tests send gRPC messages as bytes.
type (
	RawMessage = rawMessage
	RawCodec   = rawCodec
)

// RequestsCounted reads strata_ingest_requests_total for one series.
func (in *Ingester) RequestsCounted(signal, protocol, code string) float64 {
	return testutil.ToFloat64(in.m.requests.WithLabelValues(signal, protocol, code))
}

// RejectedCounted reads strata_ingest_rejected_items_total for a signal.
func (in *Ingester) RejectedCounted(signal string) float64 {
	return testutil.ToFloat64(in.m.rejected.WithLabelValues(signal))
}

// WriteSegment writes WAL segment seq in dir as a build of the given table
// schema version would: its header says version, and its frames hold
// batches (with that version's columns) of a project's records.
func WriteSegment(dir string, seq uint64, version int, project string, batches ...arrow.RecordBatch) error {
	f, _, err := createSegment(dir, seq, time.Now())
	if err != nil {
		return err
	}
	defer f.f.Close()
	for _, b := range batches {
		frame, err := encodeFrame(bufKey{project: project, table: schema.Records}, b)
		if err != nil {
			return err
		}
		if _, err := f.f.Write(frame); err != nil {
			return err
		}
	}
	if _, err := f.f.WriteAt([]byte{'0' + byte(version)}, 7); err != nil {
		return err
	}
	return f.f.Sync()
}

package ingest

import "github.com/prometheus/client_golang/prometheus/testutil"

// ReuploadAfter lets tests shorten how long a flush waits for the catalog
// before uploading its files again.
var ReuploadAfter = &reuploadAfter

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

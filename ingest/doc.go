// Package ingest is strata's front door: OTLP receivers (gRPC and HTTP),
// OTLP→Arrow conversion, the write-ahead log on local scratch, and the
// flush of Parquet files to the object store and the catalog.
package ingest

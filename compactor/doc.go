// Package compactor merges small Parquet files into large ones, enforces
// per-project retention, and deletes objects no catalog row refers to.
package compactor

// Package sql is the query front end: the HTTP query API, the Postgres wire
// protocol, time-range pruning, the DuckDB sandbox and per-project
// isolation. DuckDB itself is owned by package engine.
package sql

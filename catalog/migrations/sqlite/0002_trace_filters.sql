-- Per-file filter of trace ids (see engine.TraceFilter), so a lookup by
-- trace id opens only the files that may hold it.
ALTER TABLE files ADD COLUMN trace_filter BLOB;

-- Recent-data queries bound max_ts from below; this index serves them.
CREATE INDEX files_live_recent ON files (project_id, table_name, max_ts) WHERE tombstoned_at IS NULL;

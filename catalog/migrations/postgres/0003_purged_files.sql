-- Keys of files purged after compaction or retention, remembered for a
-- while: an ingest node that restarts with a WAL segment it had already
-- registered (it died before deleting the segment) registers the same
-- keys again, and without this memory a purged key would come back as a
-- live file, doubling its rows.
CREATE TABLE purged_files (
    object_key TEXT PRIMARY KEY,
    purged_at  BIGINT NOT NULL
);

CREATE INDEX purged_files_at ON purged_files (purged_at);

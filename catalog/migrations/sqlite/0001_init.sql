-- strata catalog, version 1: projects, files, nodes, leases.
-- Timestamps are microseconds since the Unix epoch (UTC).
CREATE TABLE projects (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    retention_seconds BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);

INSERT INTO projects (id, name, retention_seconds, created_at)
VALUES ('default', 'default', 2592000, CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE files (
    object_key    TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects (id),
    table_name    TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    level         INTEGER NOT NULL,
    min_ts        BIGINT NOT NULL,
    max_ts        BIGINT NOT NULL,
    row_count     BIGINT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    tombstoned_at BIGINT
);

CREATE INDEX files_live ON files (project_id, table_name, min_ts) WHERE tombstoned_at IS NULL;
CREATE INDEX files_tombstoned ON files (tombstoned_at) WHERE tombstoned_at IS NOT NULL;

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    address      TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

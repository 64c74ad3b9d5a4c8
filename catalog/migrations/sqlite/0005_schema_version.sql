-- The table schema version each file was written with (schema.Version):
-- files of version 1 predate the column.
ALTER TABLE files ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1;

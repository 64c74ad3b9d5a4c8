-- Values every node of a deployment shares, such as the secret that signs
-- the query contexts cache nodes check (created on first use).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

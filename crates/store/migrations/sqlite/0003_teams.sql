-- Teams made through the admin API (the config can name teams too). Times are microseconds.
CREATE TABLE teams (
    name TEXT PRIMARY KEY,
    limits TEXT,
    capture TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Dollar budgets on keys and teams ({usd, period, alerts} as JSON), and users: people or
-- services that keys belong to, with their own team, limits and budget. Times are microseconds.
ALTER TABLE virtual_keys ADD COLUMN budget TEXT;
ALTER TABLE teams ADD COLUMN budget TEXT;
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    team TEXT,
    limits TEXT,
    budget TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

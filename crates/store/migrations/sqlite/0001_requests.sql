-- The request log: one wide row per client call (see docs/observability.md for each column).
-- Times are microseconds: received_at since the Unix epoch, the *_us columns since received_at.
-- List-like columns hold JSON text, so SQLite and Postgres share one shape.
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    sampled INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL,
    first_byte_us INTEGER,
    first_token_us INTEGER,
    duration_us INTEGER NOT NULL,
    upstream_us INTEGER,
    overhead_us INTEGER,
    key_name TEXT,
    team TEXT,
    user_id TEXT,
    session_id TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    surface TEXT NOT NULL,
    operation TEXT NOT NULL,
    requested_model TEXT,
    provider TEXT,
    upstream_model TEXT,
    response_model TEXT,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT,
    error_message TEXT,
    attempts TEXT NOT NULL DEFAULT '[]',
    attempt_count INTEGER NOT NULL,
    fallback INTEGER NOT NULL,
    finish_reasons TEXT NOT NULL DEFAULT '[]',
    cache_status TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens INTEGER,
    cost_input REAL,
    cost_output REAL,
    cost_cache_read REAL,
    cost_cache_write REAL,
    cost_total REAL,
    capture TEXT NOT NULL,
    request_bytes INTEGER NOT NULL,
    response_bytes INTEGER NOT NULL,
    request_body TEXT,
    response_body TEXT
);

CREATE INDEX requests_received_at ON requests (received_at);
CREATE INDEX requests_key ON requests (key_name, received_at);
CREATE INDEX requests_team ON requests (team, received_at);
CREATE INDEX requests_user ON requests (user_id, received_at);
CREATE INDEX requests_model ON requests (requested_model, received_at);
CREATE INDEX requests_session ON requests (session_id, received_at);

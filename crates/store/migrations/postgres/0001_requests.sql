-- The request log: one wide row per client call (see docs/observability.md for each column).
-- Times are microseconds: received_at since the Unix epoch, the *_us columns since received_at.
-- List-like columns hold JSON text, so SQLite and Postgres share one shape.
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    sampled BIGINT NOT NULL DEFAULT 0,
    received_at BIGINT NOT NULL,
    first_byte_us BIGINT,
    first_token_us BIGINT,
    duration_us BIGINT NOT NULL,
    upstream_us BIGINT,
    overhead_us BIGINT,
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
    stream BIGINT NOT NULL,
    status BIGINT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    attempts TEXT NOT NULL DEFAULT '[]',
    attempt_count BIGINT NOT NULL,
    fallback BIGINT NOT NULL,
    finish_reasons TEXT NOT NULL DEFAULT '[]',
    cache_status TEXT,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cache_read_tokens BIGINT,
    cache_write_tokens BIGINT,
    reasoning_tokens BIGINT,
    cost_input DOUBLE PRECISION,
    cost_output DOUBLE PRECISION,
    cost_cache_read DOUBLE PRECISION,
    cost_cache_write DOUBLE PRECISION,
    cost_total DOUBLE PRECISION,
    capture TEXT NOT NULL,
    request_bytes BIGINT NOT NULL,
    response_bytes BIGINT NOT NULL,
    request_body TEXT,
    response_body TEXT
);

CREATE INDEX requests_received_at ON requests (received_at);
CREATE INDEX requests_key ON requests (key_name, received_at);
CREATE INDEX requests_team ON requests (team, received_at);
CREATE INDEX requests_user ON requests (user_id, received_at);
CREATE INDEX requests_model ON requests (requested_model, received_at);
CREATE INDEX requests_session ON requests (session_id, received_at);

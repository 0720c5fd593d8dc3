-- Virtual keys made through the admin API. The secret itself is never stored: only its SHA-256
-- (hex) to check it, and a short prefix to recognise it by. Times are microseconds since the epoch.
CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    team TEXT,
    user_id TEXT,
    models TEXT,
    limits TEXT,
    capture TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    expires_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Who changed what through the admin API, and when. Never a secret.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_log_at ON audit_log (at);

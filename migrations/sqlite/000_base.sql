-- Change events: every write records one; nodes rebuild their configuration snapshot from them.
CREATE TABLE IF NOT EXISTS cluster_events (
    id        TEXT PRIMARY KEY,
    node_id   TEXT NOT NULL,
    at        REAL NOT NULL,
    nbf       REAL,
    expire_at REAL NOT NULL,
    channel   TEXT NOT NULL,
    data      TEXT
);
CREATE INDEX IF NOT EXISTS cluster_events_at_idx ON cluster_events (at);
CREATE INDEX IF NOT EXISTS cluster_events_channel_idx ON cluster_events (channel);

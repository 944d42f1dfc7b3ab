-- Change events: every write records one; nodes rebuild their configuration snapshot from them.
CREATE TABLE IF NOT EXISTS cluster_events (
    id        UUID PRIMARY KEY,
    node_id   UUID NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    nbf       TIMESTAMPTZ,
    expire_at TIMESTAMPTZ NOT NULL,
    channel   TEXT NOT NULL,
    data      TEXT
);
CREATE INDEX IF NOT EXISTS cluster_events_at_idx ON cluster_events (at);
CREATE INDEX IF NOT EXISTS cluster_events_channel_idx ON cluster_events (channel);

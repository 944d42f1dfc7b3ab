-- Counters of the rate-limiting and response-ratelimiting plugins' `cluster` policy: one row
-- per (identifier, period, window start, service, route), as Kong keeps them. `period_date`
-- and `ttl` are Unix seconds; rows past their `ttl` are deleted by the node now and then.
CREATE TABLE IF NOT EXISTS ratelimiting_metrics (
    identifier  TEXT    NOT NULL,
    period      TEXT    NOT NULL,
    period_date INTEGER NOT NULL,
    service_id  TEXT    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    route_id    TEXT    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    value       INTEGER NOT NULL DEFAULT 0,
    ttl         INTEGER,
    PRIMARY KEY (identifier, period, period_date, service_id, route_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ratelimiting_metrics_ttl_idx ON ratelimiting_metrics (ttl);

-- response-ratelimiting: `period` is `<limit name>_<period>`.
CREATE TABLE IF NOT EXISTS response_ratelimiting_metrics (
    identifier  TEXT    NOT NULL,
    period      TEXT    NOT NULL,
    period_date INTEGER NOT NULL,
    service_id  TEXT    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    route_id    TEXT    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    value       INTEGER NOT NULL DEFAULT 0,
    ttl         INTEGER,
    PRIMARY KEY (identifier, period, period_date, service_id, route_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS response_ratelimiting_metrics_ttl_idx ON response_ratelimiting_metrics (ttl);

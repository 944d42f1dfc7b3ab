-- Counters of the rate-limiting and response-ratelimiting plugins' `cluster` policy, as Kong
-- keeps them: one row per (identifier, period, window start, service, route). Rows past their
-- `ttl` are deleted by the nodes now and then.
CREATE TABLE IF NOT EXISTS ratelimiting_metrics (
    identifier  TEXT                     NOT NULL,
    period      TEXT                     NOT NULL,
    period_date TIMESTAMP WITH TIME ZONE NOT NULL,
    service_id  UUID                     NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000'::uuid,
    route_id    UUID                     NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000'::uuid,
    value       INTEGER,
    ttl         TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (identifier, period, period_date, service_id, route_id)
);
CREATE INDEX IF NOT EXISTS ratelimiting_metrics_idx ON ratelimiting_metrics (service_id, route_id, period_date, period);
CREATE INDEX IF NOT EXISTS ratelimiting_metrics_ttl_idx ON ratelimiting_metrics (ttl);

-- response-ratelimiting: `period` is `<limit name>_<period>`.
CREATE TABLE IF NOT EXISTS response_ratelimiting_metrics (
    identifier  TEXT                     NOT NULL,
    period      TEXT                     NOT NULL,
    period_date TIMESTAMP WITH TIME ZONE NOT NULL,
    service_id  UUID                     NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000'::uuid,
    route_id    UUID                     NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000'::uuid,
    value       INTEGER,
    ttl         TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (identifier, period, period_date, service_id, route_id)
);
CREATE INDEX IF NOT EXISTS response_ratelimiting_metrics_ttl_idx ON response_ratelimiting_metrics (ttl);

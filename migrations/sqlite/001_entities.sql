-- Entities. Every entity row is one JSON document keyed by (entity, id); the tables beside it
-- index what the datastore looks rows up by: unique keys (names, usernames, cache keys),
-- foreign references (nested lists, cascades, restrictions) and tags (list filters, /tags).
CREATE TABLE IF NOT EXISTS entities (
    entity TEXT NOT NULL,
    id     TEXT NOT NULL,
    data   TEXT NOT NULL,
    PRIMARY KEY (entity, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS entity_keys (
    entity TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    id     TEXT NOT NULL,
    PRIMARY KEY (entity, key, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_keys_owner_idx ON entity_keys (entity, id);

CREATE TABLE IF NOT EXISTS entity_refs (
    entity     TEXT NOT NULL,
    id         TEXT NOT NULL,
    field      TEXT NOT NULL,
    ref_entity TEXT NOT NULL,
    ref_id     TEXT NOT NULL,
    PRIMARY KEY (entity, id, field, ref_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_refs_target_idx ON entity_refs (ref_entity, ref_id, entity, field, id);

CREATE TABLE IF NOT EXISTS entity_tags (
    entity TEXT NOT NULL,
    id     TEXT NOT NULL,
    tag    TEXT NOT NULL,
    PRIMARY KEY (entity, id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_tags_tag_idx ON entity_tags (tag, entity, id);

-- Entities. Every entity row is one JSON document keyed by (entity, id); the tables beside it
-- index what the datastore looks rows up by: unique keys (names, usernames, cache keys),
-- foreign references (nested lists, cascades, restrictions) and tags (list filters, /tags).
-- Text compares bytewise ("C"), so ids order the same on every backend, whatever the locale.
CREATE TABLE IF NOT EXISTS entities (
    entity TEXT COLLATE "C" NOT NULL,
    id     TEXT COLLATE "C" NOT NULL,
    data   TEXT NOT NULL,
    PRIMARY KEY (entity, id)
);

CREATE TABLE IF NOT EXISTS entity_keys (
    entity TEXT COLLATE "C" NOT NULL,
    key    TEXT COLLATE "C" NOT NULL,
    value  TEXT COLLATE "C" NOT NULL,
    id     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (entity, key, value)
);
CREATE INDEX IF NOT EXISTS entity_keys_owner_idx ON entity_keys (entity, id);

CREATE TABLE IF NOT EXISTS entity_refs (
    entity     TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    field      TEXT COLLATE "C" NOT NULL,
    ref_entity TEXT COLLATE "C" NOT NULL,
    ref_id     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (entity, id, field, ref_id)
);
CREATE INDEX IF NOT EXISTS entity_refs_target_idx ON entity_refs (ref_entity, ref_id, entity, field, id);

CREATE TABLE IF NOT EXISTS entity_tags (
    entity TEXT COLLATE "C" NOT NULL,
    id     TEXT COLLATE "C" NOT NULL,
    tag    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (entity, id, tag)
);
CREATE INDEX IF NOT EXISTS entity_tags_tag_idx ON entity_tags (tag, entity, id);

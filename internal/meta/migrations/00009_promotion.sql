-- +goose Up
-- Properties are key/value facts set on an artifact through the API
-- (ci.tests=passed), keyed like pins: a package version, or a raw path with
-- version ''. Promotion gates read them; promotion copies them.
CREATE TABLE properties (
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    prop        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_by  TEXT NOT NULL DEFAULT '',
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, name, version, prop)
);

-- Promotions are audit records (and, while pending approval, requests).
-- Repositories are named by key: the record outlives them.
CREATE TABLE promotions (
    id            TEXT PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    requested_by  TEXT NOT NULL,
    source        TEXT NOT NULL,
    target        TEXT NOT NULL,
    format        TEXT NOT NULL,
    artifact      TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    digest        TEXT NOT NULL,
    state         TEXT NOT NULL,
    gates         TEXT NOT NULL DEFAULT '[]',
    reason        TEXT NOT NULL DEFAULT '',
    comment       TEXT NOT NULL DEFAULT '',
    decided_by    TEXT NOT NULL DEFAULT '',
    decided_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX promotions_digest ON promotions (digest, id);
CREATE INDEX promotions_name ON promotions (name, version, id);

-- +goose Down
DROP TABLE promotions;
DROP TABLE properties;

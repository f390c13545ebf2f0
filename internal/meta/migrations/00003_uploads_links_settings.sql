-- +goose Up
-- Resumable upload sessions (OCI chunked uploads): the blob store's resume
-- state lives here, so any node can continue an upload another started.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    name        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT '',
    size        BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX uploads_updated ON uploads (updated_at);

-- Typed edges from a component (by version) to digests within a package
-- name: an OCI manifest's blobs and child manifests, its subject. They
-- answer "what does this reference" (validation, promotion of a whole
-- graph) and "what refers to this" (the referrers API).
CREATE TABLE links (
    repo_id  TEXT NOT NULL REFERENCES repositories(id),
    name     TEXT NOT NULL,
    source   TEXT NOT NULL,
    target   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    PRIMARY KEY (repo_id, name, source, target, kind)
);
CREATE INDEX links_target ON links (repo_id, name, target, kind);

-- Instance-wide settings shared by every node (a token signing key, say).
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP TABLE links;
DROP TABLE uploads;

-- +goose Up
CREATE TABLE repositories (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    format      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    tier        TEXT NOT NULL DEFAULT '',
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE assets (
    id                      TEXT PRIMARY KEY,
    repo_id                 TEXT NOT NULL REFERENCES repositories(id),
    path                    TEXT NOT NULL,
    blob_digest             TEXT NOT NULL REFERENCES blobs(digest),
    size                    BIGINT NOT NULL,
    content_type            TEXT NOT NULL DEFAULT '',
    sha1                    TEXT NOT NULL DEFAULT '',
    md5                     TEXT NOT NULL DEFAULT '',
    sha512                  TEXT NOT NULL DEFAULT '',
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    last_downloaded_at      BIGINT NOT NULL DEFAULT 0,
    created_by              TEXT NOT NULL DEFAULT '',
    deprecated              BOOLEAN NOT NULL DEFAULT FALSE,
    deprecation_message     TEXT NOT NULL DEFAULT '',
    fetched_at              BIGINT NOT NULL DEFAULT 0,
    upstream_etag           TEXT NOT NULL DEFAULT '',
    upstream_last_modified  TEXT NOT NULL DEFAULT '',
    UNIQUE (repo_id, path)
);
CREATE INDEX assets_blob ON assets (blob_digest);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    email          TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL DEFAULT '',
    admin          BOOLEAN NOT NULL DEFAULT FALSE,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL
);

CREATE TABLE groups (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE group_members (
    group_name  TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL DEFAULT '',
    description   TEXT NOT NULL DEFAULT '',
    hash          TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL DEFAULT '[]',
    expires_at    BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE permissions (
    id              TEXT PRIMARY KEY,
    principal_type  TEXT NOT NULL,
    principal       TEXT NOT NULL DEFAULT '',
    repos           TEXT NOT NULL,
    actions         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id      TEXT PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL DEFAULT '',
    action  TEXT NOT NULL,
    repo    TEXT NOT NULL DEFAULT '',
    path    TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_repo ON audit_events (repo, id);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE permissions;
DROP TABLE tokens;
DROP TABLE group_members;
DROP TABLE groups;
DROP TABLE users;
DROP TABLE assets;
DROP TABLE blobs;
DROP TABLE repositories;

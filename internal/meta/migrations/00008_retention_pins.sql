-- +goose Up
-- Pins mark a package version (or a raw path, version '') as in use, by a
-- deployment system say: retention never expires a pinned version.
CREATE TABLE pins (
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, name, version)
);

-- +goose Down
DROP TABLE pins;

-- +goose Up
-- Components are package versions (npm name@version, Maven g:a:v, a PyPI
-- release, an OCI image manifest) grouping assets; tags name a component
-- or a digest (npm dist-tags, OCI tags). Attributes are format-specific JSON.
CREATE TABLE components (
    id                   TEXT PRIMARY KEY,
    repo_id              TEXT NOT NULL REFERENCES repositories(id),
    name                 TEXT NOT NULL,
    version              TEXT NOT NULL,
    attributes           TEXT NOT NULL DEFAULT '{}',
    deprecated           BOOLEAN NOT NULL DEFAULT FALSE,
    deprecation_message  TEXT NOT NULL DEFAULT '',
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    created_by           TEXT NOT NULL DEFAULT '',
    UNIQUE (repo_id, name, version)
);

ALTER TABLE assets ADD COLUMN component_id TEXT REFERENCES components(id);
ALTER TABLE assets ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
CREATE INDEX assets_component ON assets (component_id);

CREATE TABLE tags (
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    name        TEXT NOT NULL,
    tag         TEXT NOT NULL,
    target      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, name, tag)
);
CREATE INDEX tags_target ON tags (repo_id, name, target);

-- +goose Down
DROP TABLE tags;
DROP INDEX assets_component;
ALTER TABLE assets DROP COLUMN attributes;
ALTER TABLE assets DROP COLUMN component_id;
DROP TABLE components;

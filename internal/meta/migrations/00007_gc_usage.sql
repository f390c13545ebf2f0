-- +goose Up
-- Garbage collection: a blob row is 'live' or 'deleting' (marked by GC,
-- file being removed); last_ref is when a writer last leased or referenced
-- it. GC only marks live rows nothing references whose last_ref is older
-- than the grace period; writers lease (PutBlob) before relying on a file
-- that already exists. See docs/gc.md.
ALTER TABLE blobs ADD COLUMN state TEXT NOT NULL DEFAULT 'live';
ALTER TABLE blobs ADD COLUMN last_ref BIGINT NOT NULL DEFAULT 0;
UPDATE blobs SET last_ref = created_at;
CREATE INDEX blobs_state ON blobs (state, last_ref);

-- Exact usage, kept in the same transactions that change assets and blobs.
ALTER TABLE repositories ADD COLUMN used_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN used_count BIGINT NOT NULL DEFAULT 0;
UPDATE repositories SET
    used_bytes = (SELECT COALESCE(SUM(size), 0) FROM assets WHERE assets.repo_id = repositories.id),
    used_count = (SELECT COUNT(*) FROM assets WHERE assets.repo_id = repositories.id);

CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('physical_bytes', (SELECT COALESCE(SUM(size), 0) FROM blobs));
INSERT INTO counters (name, value) VALUES ('physical_count', (SELECT COUNT(*) FROM blobs));

-- +goose Down
DROP TABLE counters;
ALTER TABLE repositories DROP COLUMN used_count;
ALTER TABLE repositories DROP COLUMN used_bytes;
DROP INDEX blobs_state;
ALTER TABLE blobs DROP COLUMN last_ref;
ALTER TABLE blobs DROP COLUMN state;

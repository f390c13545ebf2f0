// Package migrations embeds the versioned SQL migrations of the metadata
// store. Every file must be accepted by both SQLite and PostgreSQL: plain
// types (TEXT, BIGINT, BOOLEAN), application-generated text IDs, no
// dialect-only syntax.
package migrations

import "embed"

// FS holds the migration files, applied in order by goose.
//
//go:embed *.sql
var FS embed.FS

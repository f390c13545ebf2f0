// Package config owns Coffer's configuration: one typed tree with defaults
// in code, read from a YAML file and COFFER_* environment variables, and
// validated as a whole so that every problem is reported at once, each with
// the line of the file it comes from.
//
// Secrets never live in the file: fields ending in _env or _file name the
// environment variable or file to read them from.
package config

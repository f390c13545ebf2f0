// Package server assembles Coffer's HTTP surface: it routes /repository/<key>/
// to the format of that repository (and format mounts such as /v2/), serves
// the management API under /api/v1 and the operations endpoints (/healthz,
// /readyz, /metrics), and wraps everything in one middleware chain: recover,
// request id, logging, metrics, and authentication.
//
// Paths are parsed from the escaped request URI, never after the standard
// library cleaned them, so that a traversal attempt is refused with an error
// instead of being silently redirected.
package server

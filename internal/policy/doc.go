// Package policy holds the pure decision logic of the artifact lifecycle:
// retention rules (Coffer's own per-package rules and AWS ECR lifecycle
// policies, accepted as written for ECR) evaluated over a snapshot of a
// repository's versions. It knows nothing of storage: callers give it the
// versions, their tags and times, and get back which to expire and the rule
// that decided each one. Protections (pins, recent downloads, release tiers)
// are applied by the caller, after evaluation, and always win.
package policy

// Package auth owns identities and permissions: users (argon2id or bcrypt
// password hashes), groups, API tokens (random secrets shown once, stored as
// sha256 hashes, with expiry and scopes), permission grants on repository
// key patterns, and the decision "may this principal do this action on this
// repository".
//
// Authentication answers who is calling (a Principal, possibly anonymous);
// wrong credentials are errs.Unauthenticated. Authorization answers whether
// they may: a missing grant is errs.Unauthenticated for an anonymous caller
// (so the client is asked to log in) and errs.Denied, naming the action and
// the repository, for an authenticated one. A token's scopes only ever
// narrow what its user may do.
package auth

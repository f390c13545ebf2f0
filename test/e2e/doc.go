// Package e2e runs the real coffer binary on loopback and drives it with
// real clients (curl, the coffer CLI, and each format's own tools), one file
// per format. The binary is built once per test run (see TestMain).
package e2e

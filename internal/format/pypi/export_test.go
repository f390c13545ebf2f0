package pypi

// SetMaxSdistExpanded lowers the tarball expansion limit for a test.
func SetMaxSdistExpanded(n int64) (restore func()) {
	old := maxSdistExpanded
	maxSdistExpanded = n
	return func() { maxSdistExpanded = old }
}

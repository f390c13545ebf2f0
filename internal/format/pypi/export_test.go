package pypi

// SetMaxSdistExpanded lowers the tarball expansion limit for a test.
func SetMaxSdistExpanded(n int64) (restore func()) {
	old := maxSdistExpanded
	maxSdistExpanded = n
	return func() { maxSdistExpanded = old }
}

// SetStreamAbove changes the size from which remote files stream.
func SetStreamAbove(n int64) (restore func()) {
	old := streamAbove
	streamAbove = n
	return func() { streamAbove = old }
}

package server

// RoutePatterns lists the management API's route table ("GET /api/v1/..."),
// for tests that check every route is served and documented.
func RoutePatterns() []string {
	a := &api{}
	var out []string
	for _, rt := range a.routes() {
		out = append(out, rt.pattern)
	}
	return out
}

package server_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/server"
)

var param = regexp.MustCompile(`\{(\w+)(\.\.\.)?\}`)

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	e := apptest.New(t, apiConfig)
	// The document is public: clients read it before they log in.
	resp, body := e.Anonymous().Do("GET", "/api/v1/openapi.json", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET openapi.json: %d %v", resp.StatusCode, resp.Header)
	}
	if !json.Valid([]byte(body)) {
		t.Fatal("openapi.json is not valid JSON")
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title, Version string
		} `json:"info"`
		Servers []struct{ URL string } `json:"servers"`
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Summary     string `json:"summary"`
			Parameters  []struct {
				Name     string `json:"name"`
				In       string `json:"in"`
				Required bool   `json:"required"`
			} `json:"parameters"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas         map[string]any `json:"schemas"`
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" || doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("header: openapi %q, info %+v", doc.OpenAPI, doc.Info)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != e.URL {
		t.Errorf("servers: %+v, want %s", doc.Servers, e.URL)
	}
	if doc.Components.SecuritySchemes["basic"] == nil || doc.Components.SecuritySchemes["bearer"] == nil {
		t.Errorf("security schemes: %v", doc.Components.SecuritySchemes)
	}

	routes := server.RoutePatterns()
	documented := 0
	for _, p := range doc.Paths {
		documented += len(p)
	}
	if documented != len(routes) {
		t.Errorf("the document has %d operations, the route table %d", documented, len(routes))
	}
	ids := map[string]string{}
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		path := param.ReplaceAllString(pattern, "{$1}")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("route %s is not in the document (as %s %s)", rt, strings.ToLower(method), path)
			continue
		}
		if op.Summary == "" || op.OperationID == "" {
			t.Errorf("%s: no summary or operationId", rt)
		}
		if prev, dup := ids[op.OperationID]; dup {
			t.Errorf("operationId %s used by %s and %s", op.OperationID, prev, rt)
		}
		ids[op.OperationID] = rt
		var want []string
		for _, m := range param.FindAllStringSubmatch(pattern, -1) {
			want = append(want, m[1])
		}
		var got []string
		for _, p := range op.Parameters {
			if p.In == "path" && p.Required {
				got = append(got, p.Name)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: path parameters %v, want %v", rt, got, want)
		}
		if op.Responses["default"] == nil || len(op.Responses) < 2 {
			t.Errorf("%s: responses %v", rt, op.Responses)
		}
	}

	// Every $ref points at a schema that exists.
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/schemas/(\w+)"`).FindAllStringSubmatch(body, -1)
	if len(refs) == 0 {
		t.Fatal("no $ref at all")
	}
	for _, m := range refs {
		if doc.Components.Schemas[m[1]] == nil {
			t.Errorf("$ref to missing schema %s", m[1])
		}
	}
	if doc.Components.Schemas["Error"] == nil {
		t.Error("no Error schema")
	}
}

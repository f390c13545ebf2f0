package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func daysAgo(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }

func expired(t *testing.T, policy string, images []Image) []string {
	t.Helper()
	p, err := ParseECRPolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range p.Evaluate(images, now) {
		if d.Rule == "" {
			t.Errorf("decision for %s names no rule", d.ID)
		}
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	return ids
}

// The examples of ECR's documentation ("Examples of lifecycle policies"),
// with the outcome it documents.
func TestECRDocumentationExamples(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		images []Image
		want   []string
	}{
		{
			name: "filtering on image age (tagPatternList prod*, 14 days)",
			policy: `{"rules":[{"rulePriority":1,"description":"Expire images older than 14 days","selection":{
				"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14},
				"action":{"type":"expire"}}]}`,
			images: []Image{
				{ID: "old-prod", Tags: []string{"prod-1"}, Pushed: daysAgo(20)},
				{ID: "new-prod", Tags: []string{"prod2"}, Pushed: daysAgo(3)},
				{ID: "old-dev", Tags: []string{"dev-1"}, Pushed: daysAgo(30)},
				{ID: "old-untagged", Pushed: daysAgo(30)},
			},
			want: []string{"old-prod"},
		},
		{
			name: "filtering on image count (keep one untagged)",
			policy: `{"rules":[{"rulePriority":1,"description":"Keep only one untagged image, expire all others","selection":{
				"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			images: []Image{
				{ID: "u1", Pushed: daysAgo(3)},
				{ID: "u2", Pushed: daysAgo(2)},
				{ID: "u3", Pushed: daysAgo(1)},
				{ID: "t", Tags: []string{"v1"}, Pushed: daysAgo(9)},
			},
			want: []string{"u1", "u2"},
		},
		{
			// Rule 1 marks A; rule 2 marks A and B, but A is expired already
			// and B was selected by rule 1, so only A goes.
			name: "multiple rules, example A",
			policy: `{"rules":[
				{"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
				{"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			images: []Image{
				{ID: "A", Tags: []string{"beta-1", "prod-1"}, Pushed: daysAgo(10)},
				{ID: "B", Tags: []string{"beta-2", "prod-2"}, Pushed: daysAgo(9)},
				{ID: "C", Tags: []string{"beta-3"}, Pushed: daysAgo(8)},
			},
			want: []string{"A"},
		},
		{
			// Rule 1 (both prefixes) marks A and B; rule 2 marks them too but
			// they were selected by rule 1.
			name: "multiple rules, example B (several prefixes in one rule)",
			policy: `{"rules":[
				{"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPrefixList":["beta","prod"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
				{"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			images: []Image{
				{ID: "A", Tags: []string{"beta-1", "prod-1"}, Pushed: daysAgo(10)},
				{ID: "B", Tags: []string{"beta-2", "prod-2"}, Pushed: daysAgo(9)},
				{ID: "C", Tags: []string{"beta-3", "prod-3"}, Pushed: daysAgo(8)},
			},
			want: []string{"A", "B"},
		},
		{
			// Several prefixes in one rule select only images with all of them.
			name:   "all prefixes must match",
			policy: `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["alpha","beta"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`,
			images: []Image{
				{ID: "both", Tags: []string{"alpha-1", "beta-1"}, Pushed: daysAgo(5)},
				{ID: "alpha-only", Tags: []string{"alpha-2"}, Pushed: daysAgo(5)},
			},
			want: []string{"both"},
		},
		{
			// The seed's policy shape: keep the newest 2 release tags, drop
			// untagged after 1 day, everything else after 30 days (any, last).
			name: "tagged, untagged and any together",
			policy: `{"rules":[
				{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
				{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},
				{"rulePriority":3,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`,
			images: []Image{
				{ID: "v1", Tags: []string{"v1.0"}, Pushed: daysAgo(90)},
				{ID: "v2", Tags: []string{"v2.0"}, Pushed: daysAgo(60)},
				{ID: "v3", Tags: []string{"v3.0"}, Pushed: daysAgo(40)},
				{ID: "dev-old", Tags: []string{"main-abc"}, Pushed: daysAgo(40)},
				{ID: "dev-new", Tags: []string{"main-def"}, Pushed: daysAgo(2)},
				{ID: "u-old", Pushed: daysAgo(2)},
				{ID: "u-new", Pushed: now.Add(-time.Hour)},
			},
			// v2 and v3 are the newest two v* (kept, and rule 3 may not
			// touch them: rule 1 selected them); dev-old is 40 days old.
			want: []string{"dev-old", "u-old", "v1"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := expired(t, c.policy, c.images); !slices.Equal(got, c.want) {
				t.Fatalf("expired %v, want %v", got, c.want)
			}
		})
	}
}

func TestECRPolicyRefusals(t *testing.T) {
	cases := []struct{ policy, want string }{
		{`{"rules":[]}`, "at least one rule"},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "needs a tagPrefixList or a tagPatternList"},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "takes no tagPrefixList"},
		{`{"rules":[{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
			{"rulePriority":3,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "must have the highest rulePriority"},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
			{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["x"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "each must be unique"},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":1},"action":{"type":"expire"}}]}`, `needs countUnit "days"`},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["*a*b*c*d*e"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "at most 4 are allowed"},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}}]}`, "countNumber must be a positive"},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"transition"}}]}`, "only expire"},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1,"colour":"red"},"action":{"type":"expire"}}]}`, "not valid JSON"},
		{`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["a"],"tagPatternList":["b"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "cannot both be given"},
	}
	for _, c := range cases {
		_, err := ParseECRPolicy([]byte(c.policy))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("policy %s: err = %v, want one mentioning %q", c.policy, err, c.want)
		}
	}
}

func FuzzParseECRPolicy(f *testing.F) {
	f.Add([]byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`))
	f.Add([]byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}]}`))
	f.Add([]byte(`{}`))
	images := []Image{{ID: "a", Tags: []string{"prod-1", "x*y"}, Pushed: daysAgo(20)}, {ID: "b", Pushed: daysAgo(1)}, {ID: "c", Tags: []string{"v1"}, Pushed: daysAgo(3)}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseECRPolicy(data)
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			return
		}
		seen := map[string]bool{}
		for _, d := range p.Evaluate(images, now) {
			if seen[d.ID] {
				t.Fatalf("image %s expired by two rules", d.ID)
			}
			seen[d.ID] = true
		}
	})
}

func TestRules(t *testing.T) {
	vs := []Version{
		{ID: "1", Created: daysAgo(50)},
		{ID: "2", Created: daysAgo(40), Tags: []string{"stable"}},
		{ID: "3", Created: daysAgo(20)},
		{ID: "4", Created: daysAgo(10)},
		{ID: "5", Created: daysAgo(1), Tags: []string{"latest"}},
	}
	ids := func(ds []Decision) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		slices.Sort(out)
		return out
	}
	cases := []struct {
		r    Rules
		want []string
	}{
		{Rules{}, nil},
		{Rules{KeepLast: 2}, []string{"1", "2", "3"}},
		{Rules{KeepLast: 2, KeepTags: []string{"stab*"}}, []string{"1", "3"}},
		{Rules{MaxAgeDays: 30}, []string{"1", "2"}},
		{Rules{KeepLast: 1, MaxAgeDays: 15}, []string{"1", "2", "3"}},
		{Rules{KeepLast: 0, MaxAgeDays: 0, KeepTags: []string{"*"}}, nil},
		{Rules{MaxAgeDays: 1}, []string{"1", "2", "3", "4"}}, // latest is always kept
	}
	for _, c := range cases {
		if got := ids(c.r.Evaluate(vs, now)); !slices.Equal(got, c.want) {
			t.Errorf("%+v: expired %v, want %v", c.r, got, c.want)
		}
	}
}

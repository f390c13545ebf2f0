package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ECRPolicy is an AWS ECR lifecycle policy, in ECR's own JSON.
type ECRPolicy struct {
	Rules []ECRRule `json:"rules"`
}

// ECRRule is one rule of an ECR lifecycle policy.
type ECRRule struct {
	RulePriority int          `json:"rulePriority"`
	Description  string       `json:"description,omitempty"`
	Selection    ECRSelection `json:"selection"`
	Action       ECRAction    `json:"action"`

	patterns []*regexp.Regexp
}

// ECRSelection selects the images a rule applies to.
type ECRSelection struct {
	TagStatus      string   `json:"tagStatus"`
	TagPrefixList  []string `json:"tagPrefixList,omitempty"`
	TagPatternList []string `json:"tagPatternList,omitempty"`
	CountType      string   `json:"countType"`
	CountUnit      string   `json:"countUnit,omitempty"`
	CountNumber    int      `json:"countNumber"`
	StorageClass   string   `json:"storageClass,omitempty"`
}

// ECRAction is what a rule does to the images it selects.
type ECRAction struct {
	Type string `json:"type"`
}

// Limits on a policy, as ECR has them.
const (
	maxECRPolicyBytes = 30720
	maxECRWildcards   = 4
)

// ParseECRPolicy reads and validates an ECR lifecycle policy. Every problem
// is reported, each naming its rule.
func ParseECRPolicy(data []byte) (*ECRPolicy, error) {
	if len(data) > maxECRPolicyBytes {
		return nil, fmt.Errorf("lifecycle policy is %d bytes; ECR allows at most %d", len(data), maxECRPolicyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p ECRPolicy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("lifecycle policy is not valid JSON for an ECR policy: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("lifecycle policy has data after its JSON object")
	}
	var probs []string
	add := func(i int, format string, args ...any) {
		probs = append(probs, fmt.Sprintf("rule %d (rulePriority %d): ", i+1, p.Rules[i].RulePriority)+fmt.Sprintf(format, args...))
	}
	if len(p.Rules) == 0 {
		probs = append(probs, "rules: at least one rule is required")
	}
	seen := map[int]bool{}
	maxPriority, anyAt := 0, -1
	for i := range p.Rules {
		r := &p.Rules[i]
		sel := r.Selection
		if r.RulePriority < 1 {
			add(i, "rulePriority must be a positive integer")
		}
		if seen[r.RulePriority] {
			add(i, "rulePriority %d is used by another rule; each must be unique", r.RulePriority)
		}
		seen[r.RulePriority] = true
		if r.RulePriority > maxPriority {
			maxPriority = r.RulePriority
		}
		switch sel.TagStatus {
		case "tagged":
			if len(sel.TagPrefixList) == 0 && len(sel.TagPatternList) == 0 {
				add(i, "tagStatus tagged needs a tagPrefixList or a tagPatternList")
			}
			if len(sel.TagPrefixList) > 0 && len(sel.TagPatternList) > 0 {
				add(i, "tagPrefixList and tagPatternList cannot both be given")
			}
		case "untagged", "any":
			if len(sel.TagPrefixList) > 0 || len(sel.TagPatternList) > 0 {
				add(i, "tagStatus %s takes no tagPrefixList or tagPatternList", sel.TagStatus)
			}
			if sel.TagStatus == "any" {
				anyAt = i
			}
		default:
			add(i, "tagStatus %q is not one of tagged, untagged, any", sel.TagStatus)
		}
		for _, pre := range sel.TagPrefixList {
			if pre == "" {
				add(i, "tagPrefixList has an empty prefix")
			}
		}
		for _, pat := range sel.TagPatternList {
			n := strings.Count(pat, "*")
			switch {
			case pat == "":
				add(i, "tagPatternList has an empty pattern")
			case n > maxECRWildcards:
				add(i, "tag pattern %q has %d wildcards; at most %d are allowed", pat, n, maxECRWildcards)
			default:
				r.patterns = append(r.patterns, globRegexp(pat))
			}
		}
		switch sel.CountType {
		case "imageCountMoreThan":
			if sel.CountUnit != "" {
				add(i, "countType imageCountMoreThan takes no countUnit")
			}
		case "sinceImagePushed":
			if sel.CountUnit != "days" {
				add(i, "countType sinceImagePushed needs countUnit \"days\"")
			}
		case "sinceImagePulled", "sinceImageTransitioned":
			add(i, "countType %s is not supported (Coffer has no archive storage class); use imageCountMoreThan or sinceImagePushed", sel.CountType)
		default:
			add(i, "countType %q is not one of imageCountMoreThan, sinceImagePushed", sel.CountType)
		}
		if sel.CountNumber < 1 {
			add(i, "countNumber must be a positive integer")
		}
		if sel.StorageClass != "" && sel.StorageClass != "standard" {
			add(i, "storageClass %q is not supported (only standard)", sel.StorageClass)
		}
		if r.Action.Type != "expire" {
			add(i, "action.type %q is not supported (only expire)", r.Action.Type)
		}
	}
	if anyAt >= 0 && p.Rules[anyAt].RulePriority != maxPriority {
		add(anyAt, "a rule with tagStatus any must have the highest rulePriority (it is evaluated last)")
	}
	for i := range p.Rules {
		if i != anyAt && p.Rules[i].Selection.TagStatus == "any" {
			add(i, "only one rule may have tagStatus any")
		}
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("invalid lifecycle policy: %s", strings.Join(probs, "; "))
	}
	sort.SliceStable(p.Rules, func(i, j int) bool { return p.Rules[i].RulePriority < p.Rules[j].RulePriority })
	return &p, nil
}

// globRegexp turns an ECR tag pattern (only * is special) into an anchored
// regular expression.
func globRegexp(pat string) *regexp.Regexp {
	parts := strings.Split(pat, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// Image is what an ECR rule sees of an image: its tags and push time.
type Image struct {
	ID     string
	Tags   []string
	Pushed time.Time
}

// Decision is one image or version to expire and the rule that decided it.
type Decision struct {
	ID   string `json:"id"`
	Rule string `json:"rule"`
}

// RuleName describes the rule for reports: "ecr rule 1 (Expire old betas)".
func (r *ECRRule) RuleName() string {
	if r.Description != "" {
		return fmt.Sprintf("ecr rulePriority %d (%s)", r.RulePriority, r.Description)
	}
	return fmt.Sprintf("ecr rulePriority %d", r.RulePriority)
}

// matches reports whether an image satisfies the rule's tagging requirements.
func (r *ECRRule) matches(im *Image) bool {
	switch r.Selection.TagStatus {
	case "any":
		return true
	case "untagged":
		return len(im.Tags) == 0
	}
	if len(im.Tags) == 0 {
		return false
	}
	// Every prefix (pattern) must match at least one of the image's tags.
	for _, pre := range r.Selection.TagPrefixList {
		if !anyTag(im.Tags, func(t string) bool { return strings.HasPrefix(t, pre) }) {
			return false
		}
	}
	for _, re := range r.patterns {
		if !anyTag(im.Tags, re.MatchString) {
			return false
		}
	}
	return true
}

func anyTag(tags []string, f func(string) bool) bool {
	for _, t := range tags {
		if f(t) {
			return true
		}
	}
	return false
}

// Evaluate applies the policy to images at time now, with ECR's semantics:
// rules run in rulePriority order; each selects the images matching its
// tagging requirements (including images a higher-priority rule selected,
// which still count); sinceImagePushed marks those pushed more than
// countNumber days ago, imageCountMoreThan all but the countNumber most
// recently pushed; a marked image is expired only if no higher-priority
// rule selected it. An image is expired by at most one rule.
func (p *ECRPolicy) Evaluate(images []Image, now time.Time) []Decision {
	// Newest first; ties broken by ID for a stable result.
	sorted := make([]*Image, len(images))
	for i := range images {
		sorted[i] = &images[i]
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Pushed.Equal(sorted[j].Pushed) {
			return sorted[i].Pushed.After(sorted[j].Pushed)
		}
		return sorted[i].ID < sorted[j].ID
	})
	claimed := map[string]bool{} // selected by a higher-priority rule
	var out []Decision
	for i := range p.Rules {
		r := &p.Rules[i]
		var selected []*Image
		for _, im := range sorted {
			if r.matches(im) {
				selected = append(selected, im)
			}
		}
		var marked []*Image
		switch r.Selection.CountType {
		case "imageCountMoreThan":
			if len(selected) > r.Selection.CountNumber {
				marked = selected[r.Selection.CountNumber:]
			}
		case "sinceImagePushed":
			cutoff := now.Add(-time.Duration(r.Selection.CountNumber) * 24 * time.Hour)
			for _, im := range selected {
				if im.Pushed.Before(cutoff) {
					marked = append(marked, im)
				}
			}
		}
		for _, im := range marked {
			if !claimed[im.ID] {
				out = append(out, Decision{ID: im.ID, Rule: r.RuleName()})
			}
		}
		for _, im := range selected {
			claimed[im.ID] = true
		}
	}
	return out
}

package config

import (
	"errors"
	"strings"
	"testing"
)

// Retention rules and promotion gates are validated with the rest, each
// problem naming its repository and line.
func TestLifecycleProblems(t *testing.T) {
	src := `retention: {interval: -1s}
repositories:
  - key: docker-dev
    format: oci
    kind: local
    retention:
      keep_last: -1
      ecr_policy: '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}'
  - key: raw-dev
    format: raw
    kind: local
    retention: {ecr_policy: '{"rules":[]}'}
    promotion:
      require_signature: {public_keys: ["not a key"]}
  - key: raw-rem
    format: raw
    kind: remote
    upstream: {url: "http://127.0.0.1:9"}
    retention: {keep_last: 3}
    promotion: {require_approval: true}
`
	_, err := Parse([]byte(src), Options{Formats: []string{"raw", "oci"}})
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want *Problems", err)
	}
	for _, w := range []string{
		"retention.interval: must not be negative",
		"repositories[docker-dev].retention: keep_last must not be negative",
		"repositories[docker-dev].retention: ecr_policy: invalid lifecycle policy: rule 1 (rulePriority 1): tagStatus tagged needs a tagPrefixList or a tagPatternList",
		"repositories[raw-dev].retention: ecr_policy applies to oci repositories only",
		"repositories[raw-dev].promotion: require_signature.public_keys[0] is not a PEM public key",
		"repositories[raw-rem].retention: only local repositories have retention rules",
		"repositories[raw-rem].promotion: only local repositories are promotion targets",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%s", w, err)
		}
	}
}

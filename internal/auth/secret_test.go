package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestArgon2idPasswords(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("the hash contains the password")
	}
	if !VerifyPassword(h, "correct horse battery staple") {
		t.Error("the right password is refused")
	}
	for _, wrong := range []string{"", "correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple "} {
		if VerifyPassword(h, wrong) {
			t.Errorf("wrong password %q accepted", wrong)
		}
	}
	h2, _ := HashPassword("correct horse battery staple")
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
}

func TestBcryptPasswords(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("imported from nexus"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(b)
	for _, variant := range []string{h, "$2b$" + h[4:], "$2y$" + h[4:]} {
		if !VerifyPassword(variant, "imported from nexus") {
			t.Errorf("bcrypt %s: the right password is refused", variant[:4])
		}
		if VerifyPassword(variant, "imported from artifactory") {
			t.Errorf("bcrypt %s: a wrong password is accepted", variant[:4])
		}
	}
}

func TestVerifyPasswordMalformedHashes(t *testing.T) {
	good, _ := HashPassword("pw-pw-pw-pw")
	parts := strings.Split(good, "$")
	for _, h := range []string{
		"",
		"pw-pw-pw-pw",
		"$argon2id$",
		"$argon2i$" + strings.Join(parts[2:], "$"),
		"$argon2id$v=19$m=19456,t=2,p=1$!!!$" + parts[5],
		"$argon2id$v=19$m=19456,t=2,p=1$" + parts[4] + "$",
		"$argon2id$v=19$m=99999999,t=2,p=1$" + parts[4] + "$" + parts[5], // memory bomb
		"$argon2id$v=19$m=19456,t=1000,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$garbage$" + parts[4] + "$" + parts[5],
		"$2a$04$short",
		"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
	} {
		if VerifyPassword(h, "pw-pw-pw-pw") {
			t.Errorf("malformed hash %q verified", h)
		}
	}
}

func TestTokenSecrets(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		secret, hash, err := NewTokenSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+43 {
			t.Errorf("secret %q: want %s and 43 base62 characters", secret, TokenPrefix)
		}
		if hash != HashToken(secret) || len(hash) != 64 || strings.Contains(hash, secret[len(TokenPrefix):]) {
			t.Errorf("hash %q of %q", hash, secret)
		}
		if seen[secret] {
			t.Fatal("a token secret repeated")
		}
		seen[secret] = true
	}
	if p := RandomPassword(); len(p) != 24 || strings.HasPrefix(p, TokenPrefix) {
		t.Errorf("RandomPassword() = %q", p)
	}
}

func TestParseActions(t *testing.T) {
	got, err := ParseActions("read, WRITE", "read,delete", "")
	if err != nil || joinActions(got) != "read,write,delete" {
		t.Errorf("ParseActions = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"read,fly"}, {""}, {" , "}, nil} {
		if _, err := ParseActions(bad...); err == nil {
			t.Errorf("ParseActions(%q) accepted", bad)
		}
	}
}

func TestMatchRepo(t *testing.T) {
	tests := []struct {
		patterns, key string
		want          bool
	}{
		{"docker-staging-*", "docker-staging-local", true},
		{"docker-staging-*", "docker-staging-", true},
		{"docker-staging-*", "docker-release-local", false},
		{"docker-staging-*", "npm-docker-staging-local", false},
		{"*", "anything", true},
		{"npm-release-local", "npm-release-local", true},
		{"npm-release-local", "npm-release-local2", false},
		{"docker-*, npm-release-local", "npm-release-local", true},
		{"docker-*,npm-*", "pypi-local", false},
		{"raw-?ev", "raw-dev", true},
		{"[", "[", false},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := MatchRepo(tt.patterns, tt.key); got != tt.want {
			t.Errorf("MatchRepo(%q, %q) = %v", tt.patterns, tt.key, got)
		}
	}
	for _, p := range []string{"docker-*", "a,b", "*"} {
		if err := ValidPattern(p); err != nil {
			t.Errorf("ValidPattern(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", " ", "[", "a,["} {
		if err := ValidPattern(p); err == nil {
			t.Errorf("ValidPattern(%q) accepted", p)
		}
	}
}

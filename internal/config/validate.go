package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Kinds and tiers of repositories.
var (
	Kinds = []string{"local", "remote", "virtual"}
	Tiers = []string{"dev", "staging", "release"}
)

// KeyPattern is what a repository key may look like: it appears in URLs and,
// for OCI, as the first segment of an image name, so lower case only.
var KeyPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$`)

type collector struct {
	root  *yaml.Node
	probs []Problem
}

func (c *collector) add(field string, path []any, format string, args ...any) {
	c.probs = append(c.probs, Problem{Line: lineOf(c.root, path...), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks the whole configuration and returns every problem.
// root is the parsed YAML document for line numbers (nil when none).
func Validate(cfg *Config, root *yaml.Node, opts Options) []Problem {
	c := &collector{root: root}
	if _, port, err := net.SplitHostPort(cfg.Server.Listen); err != nil || port == "" {
		c.add("server.listen", []any{"server", "listen"}, "%q is not a host:port address", cfg.Server.Listen)
	}
	if cfg.Server.BaseURL != "" {
		if u, err := url.Parse(cfg.Server.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.add("server.base_url", []any{"server", "base_url"}, "%q is not an absolute http(s) URL", cfg.Server.BaseURL)
		}
	}
	if cfg.Server.MaxUploadSize < 0 {
		c.add("server.max_upload_size", []any{"server", "max_upload_size"}, "must not be negative")
	}
	if cfg.Server.UploadTTL < Duration(time.Second) {
		c.add("server.upload_ttl", []any{"server", "upload_ttl"}, "must be at least 1s")
	}
	if cfg.Storage.Quota < 0 {
		c.add("storage.quota", []any{"storage", "quota"}, "must not be negative")
	}
	if cfg.Storage.QuotaWarning < 1 || cfg.Storage.QuotaWarning > 100 {
		c.add("storage.quota_warning", []any{"storage", "quota_warning"}, "must be a percentage from 1 to 100")
	}
	if cfg.GC.Grace < Duration(time.Second) {
		c.add("gc.grace", []any{"gc", "grace"}, "must be at least 1s (it protects uploads in flight)")
	}
	if cfg.Retention.Interval < 0 {
		c.add("retention.interval", []any{"retention", "interval"}, "must not be negative (0 disables the schedule)")
	}
	if cfg.GC.Interval < 0 {
		c.add("gc.interval", []any{"gc", "interval"}, "must not be negative (0 disables the schedule)")
	}
	if cfg.Storage.DataDir == "" {
		c.add("storage.data_dir", []any{"storage", "data_dir"}, "is required")
	}
	if !slices.Contains([]string{"text", "json"}, cfg.Log.Format) {
		c.add("log.format", []any{"log", "format"}, "%q is not one of text, json", cfg.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.Log.Level) {
		c.add("log.level", []any{"log", "level"}, "%q is not one of debug, info, warn, error", cfg.Log.Level)
	}
	validateRepos(c, cfg.Repositories, opts, nil)
	names := map[string]bool{}
	for i, t := range cfg.Replication {
		at := func(f string) (string, []any) {
			return fmt.Sprintf("replication[%d].%s", i, f), []any{"replication", i, f}
		}
		if t.Name == "" || names[t.Name] {
			p, k := at("name")
			c.add(p, k, "every replication target needs a unique name")
		}
		names[t.Name] = true
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p, k := at("url")
			c.add(p, k, "%q is not an absolute http(s) URL", t.URL)
		}
		if len(t.Repositories) == 0 {
			p, k := at("repositories")
			c.add(p, k, "name at least one repository (key patterns like docker-release-*)")
		}
		for _, pat := range t.Repositories {
			if _, err := path.Match(pat, ""); err != nil {
				p, k := at("repositories")
				c.add(p, k, "%q is not a valid pattern", pat)
			}
		}
		if t.TokenEnv == "" && t.TokenFile == "" && (t.Username == "" || t.PasswordEnv == "" && t.PasswordFile == "") {
			p, k := at("token_env")
			c.add(p, k, "credentials of an administrator of the target are required: token_env, token_file, or username with password_env or password_file")
		}
		if t.Interval < 0 {
			p, k := at("interval")
			c.add(p, k, "must not be negative")
		}
	}
	validateBackends(c, cfg.Storage, opts)
	sortProblems(c.probs)
	return c.probs
}

// validateBackends checks storage.database and storage.blobs.
func validateBackends(c *collector, st Storage, opts Options) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	secret := func(field string, path []any, env, file string, required bool) {
		switch {
		case env != "" && file != "":
			c.add(field, path, "set %s_env or %s_file, not both", field, field)
		case env != "" && getenv(env) == "":
			c.add(field+"_env", path, "names %s, which is not set in the environment", env)
		case file != "":
			if _, err := os.Stat(file); err != nil {
				c.add(field+"_file", path, "%s cannot be read: %v", file, err)
			}
		case required && env == "" && file == "":
			c.add(field, path, "is required (as %s_env or %s_file)", field, field)
		}
	}
	if pg := st.Database.Postgres; pg != nil {
		path := []any{"storage", "database", "postgres"}
		switch {
		case pg.DSN == "" && pg.DSNEnv == "":
			c.add("storage.database.postgres.dsn", path, "is required (dsn or dsn_env)")
		case pg.DSN != "" && pg.DSNEnv != "":
			c.add("storage.database.postgres.dsn", path, "set dsn or dsn_env, not both")
		case pg.DSNEnv != "" && getenv(pg.DSNEnv) == "":
			c.add("storage.database.postgres.dsn_env", path, "names %s, which is not set in the environment", pg.DSNEnv)
		}
		if strings.Contains(pg.DSN, "password=") || hasURLPassword(pg.DSN) {
			c.add("storage.database.postgres.dsn", path, "holds a password; use password_env or password_file")
		}
		secret("storage.database.postgres.password", path, pg.PasswordEnv, pg.PasswordFile, false)
		if pg.MaxConns < 0 {
			c.add("storage.database.postgres.max_conns", path, "must not be negative")
		}
	}
	if s3 := st.Blobs.S3; s3 != nil {
		path := []any{"storage", "blobs", "s3"}
		if s3.Endpoint == "" {
			c.add("storage.blobs.s3.endpoint", path, "is required")
		} else if strings.Contains(s3.Endpoint, "://") {
			if u, err := url.Parse(s3.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				(u.Path != "" && u.Path != "/") {
				c.add("storage.blobs.s3.endpoint", path, "%q is not host:port or an http(s) URL without a path", s3.Endpoint)
			}
		}
		if s3.Bucket == "" {
			c.add("storage.blobs.s3.bucket", path, "is required")
		}
		if s3.AccessKey != "" && (s3.AccessKeyEnv != "" || s3.AccessKeyFile != "") {
			c.add("storage.blobs.s3.access_key", path, "set one of access_key, access_key_env, access_key_file")
		} else if s3.AccessKey == "" {
			secret("storage.blobs.s3.access_key", path, s3.AccessKeyEnv, s3.AccessKeyFile, true)
		}
		secret("storage.blobs.s3.secret_key", path, s3.SecretKeyEnv, s3.SecretKeyFile, true)
		if s3.PartSize != 0 && s3.PartSize < 5<<20 {
			c.add("storage.blobs.s3.part_size", path, "must be at least 5MiB (the S3 minimum)")
		}
		if s3.RedirectTTL < 0 {
			c.add("storage.blobs.s3.redirect_ttl", path, "must not be negative")
		}
	}
}

func hasURLPassword(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// Secret reads a secret from the environment variable env or the file
// (trailing newline trimmed); both empty gives "".
func Secret(env, file string) (string, error) {
	switch {
	case env != "":
		return os.Getenv(env), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// ValidateRepositories checks repository declarations outside a file (the
// management API). existing maps keys of repositories already stored to
// their definitions, so that members and default_deploy may refer to them.
func ValidateRepositories(repos []Repository, opts Options, existing map[string]Repository) []Problem {
	c := &collector{}
	validateRepos(c, repos, opts, existing)
	return c.probs
}

func validateRepos(c *collector, repos []Repository, opts Options, existing map[string]Repository) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	all := map[string]Repository{}
	for k, v := range existing {
		all[k] = v
	}
	seen := map[string]int{}
	for i, r := range repos {
		if r.Key != "" {
			if j, dup := seen[r.Key]; dup {
				c.add(fmt.Sprintf("repositories[%d].key", i), []any{"repositories", i, "key"},
					"%q is declared twice (first at repositories[%d])", r.Key, j)
				continue
			}
			seen[r.Key] = i
			all[r.Key] = r
		}
	}
	for i, r := range repos {
		f := func(name string) (string, []any) {
			return fmt.Sprintf("repositories[%d].%s", i, name), []any{"repositories", i, name}
		}
		add := func(name, format string, args ...any) {
			field, path := f(name)
			if r.Key != "" {
				field = fmt.Sprintf("repositories[%s].%s", r.Key, name)
			}
			c.add(field, path, format, args...)
		}
		switch {
		case r.Key == "":
			add("key", "is required")
		case !KeyPattern.MatchString(r.Key):
			add("key", "%q must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting and ending with a letter or digit", r.Key)
		}
		if r.Format == "" {
			add("format", "is required (one of %s)", strings.Join(opts.Formats, ", "))
		} else if len(opts.Formats) > 0 && !slices.Contains(opts.Formats, r.Format) {
			add("format", "%q is not a supported format (one of %s)", r.Format, strings.Join(opts.Formats, ", "))
		}
		if !slices.Contains(Kinds, r.Kind) {
			add("kind", "%q is not one of local, remote, virtual", r.Kind)
		}
		if r.Tier != "" && !slices.Contains(Tiers, r.Tier) {
			add("tier", "%q is not one of dev, staging, release", r.Tier)
		}
		if r.Tier != "" && r.Kind != "local" && r.Kind != "" {
			add("tier", "only local repositories have a tier")
		}
		if r.MaxUploadSize < 0 {
			add("max_upload_size", "must not be negative")
		}
		if r.Quota < 0 {
			add("quota", "must not be negative")
		}
		if r.MetadataTTL < 0 {
			add("metadata_ttl", "must not be negative")
		}
		if r.NegativeTTL < 0 {
			add("negative_ttl", "must not be negative")
		}
		if m := r.Maven; m != nil {
			if r.Format != "maven" {
				add("maven", "only maven repositories have maven settings")
			}
			if m.VersionPolicy != "" && !slices.Contains([]string{"release", "snapshot", "mixed"}, m.VersionPolicy) {
				add("maven", "version_policy %q is not one of release, snapshot, mixed", m.VersionPolicy)
			}
			if m.LayoutPolicy != "" && !slices.Contains([]string{"strict", "permissive"}, m.LayoutPolicy) {
				add("maven", "layout_policy %q is not one of strict, permissive", m.LayoutPolicy)
			}
		}
		// remote
		if r.Kind == "remote" {
			if r.Upstream == nil || r.Upstream.URL == "" {
				add("upstream", "a remote repository needs upstream.url")
			} else {
				u := r.Upstream
				if pu, err := url.Parse(u.URL); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
					add("upstream", "url %q is not an absolute http(s) URL", u.URL)
				}
				if u.PasswordEnv != "" && u.PasswordFile != "" {
					add("upstream", "set password_env or password_file, not both")
				}
				if u.PasswordEnv != "" && getenv(u.PasswordEnv) == "" {
					add("upstream", "password_env names %s, which is not set in the environment", u.PasswordEnv)
				}
				if u.PasswordFile != "" {
					if _, err := os.Stat(u.PasswordFile); err != nil {
						add("upstream", "password_file %s cannot be read: %v", u.PasswordFile, err)
					}
				}
				if (u.PasswordEnv != "" || u.PasswordFile != "") && u.Username == "" {
					add("upstream", "a password needs a username")
				}
				if u.Timeout < 0 {
					add("upstream", "timeout must not be negative")
				}
			}
		} else {
			if r.Upstream != nil {
				add("upstream", "only remote repositories have an upstream")
			}
		}
		validateLifecycle(r, add)
		// virtual
		if r.Kind == "virtual" {
			if len(r.Members) == 0 {
				add("members", "a virtual repository needs at least one member")
			}
			for _, m := range r.Members {
				mr, ok := all[m]
				switch {
				case m == r.Key:
					add("members", "a virtual repository cannot contain itself")
				case !ok:
					add("members", "member %q is not a declared repository", m)
				case r.Format != "" && mr.Format != r.Format:
					add("members", "member %q is a %s repository, not %s", m, mr.Format, r.Format)
				}
			}
			if r.DefaultDeploy != "" {
				d, ok := all[r.DefaultDeploy]
				switch {
				case !slices.Contains(r.Members, r.DefaultDeploy):
					add("default_deploy", "%q is not a member of %s", r.DefaultDeploy, r.Key)
				case ok && d.Kind != "local":
					add("default_deploy", "%q is a %s repository; deployments go to a local one", r.DefaultDeploy, d.Kind)
				}
			}
			if cyc := cycle(r.Key, all); cyc != "" {
				add("members", "virtual repositories form a cycle: %s", cyc)
			}
		} else {
			if len(r.Members) > 0 {
				add("members", "only virtual repositories have members")
			}
			if r.DefaultDeploy != "" {
				add("default_deploy", "only virtual repositories have a default_deploy")
			}
		}
	}
}

// cycle returns a description of a membership cycle through key, or "".
func cycle(key string, all map[string]Repository) string {
	var path []string
	onPath := map[string]bool{}
	var visit func(k string) bool
	visit = func(k string) bool {
		if onPath[k] {
			path = append(path, k)
			return true
		}
		r, ok := all[k]
		if !ok || r.Kind != "virtual" {
			return false
		}
		onPath[k] = true
		path = append(path, k)
		for _, m := range r.Members {
			if m != k && visit(m) {
				return true
			}
		}
		path = path[:len(path)-1]
		onPath[k] = false
		return false
	}
	if visit(key) {
		return strings.Join(path, " → ")
	}
	return ""
}

package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration.
type Config struct {
	Server       Server       `yaml:"server" json:"server"`
	Storage      Storage      `yaml:"storage" json:"storage"`
	Log          Log          `yaml:"log" json:"log"`
	GC           GC           `yaml:"gc" json:"gc"`
	Retention    RetentionJob `yaml:"retention" json:"retention"`
	Repositories []Repository `yaml:"repositories" json:"repositories,omitempty"`
	// Replication pushes chosen local repositories to other Coffer
	// instances (docs/replication.md).
	Replication []ReplicationTarget `yaml:"replication,omitempty" json:"replication,omitempty"`
}

// ReplicationTarget is another Coffer instance that receives copies of
// local repositories: on every change, and by a periodic full reconcile.
type ReplicationTarget struct {
	Name string `yaml:"name" json:"name"`
	URL  string `yaml:"url" json:"url"` // the target's base URL
	// Repositories are key patterns ("docker-release-*"); each matching
	// local repository is copied to the target's repository of the same key.
	Repositories []string `yaml:"repositories" json:"repositories"`
	// Credentials of an administrator of the target: a token (TokenEnv or
	// TokenFile), or a user with a password (PasswordEnv or PasswordFile).
	TokenEnv     string `yaml:"token_env,omitempty" json:"token_env,omitempty"`
	TokenFile    string `yaml:"token_file,omitempty" json:"token_file,omitempty"`
	Username     string `yaml:"username,omitempty" json:"username,omitempty"`
	PasswordEnv  string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// Interval of the full reconcile (default 5m); changes are sent at once.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
}

// GC configures garbage collection.
type GC struct {
	// Interval between scheduled collections (0 disables the schedule;
	// collections on demand still work).
	Interval Duration `yaml:"interval" json:"interval"`
	// Grace keeps blobs leased by a writer more recently than this: it must
	// exceed the time between a writer's lease and its commit (milliseconds
	// normally); an hour leaves ample margin.
	Grace Duration `yaml:"grace" json:"grace"`
}

// Server configures the HTTP listener.
type Server struct {
	Listen string `yaml:"listen" json:"listen"`
	// BaseURL is what generated absolute URLs use; defaults to http://<listen>.
	BaseURL string `yaml:"base_url" json:"base_url,omitempty"`
	// MaxUploadSize bounds one request body; a repository may lower or raise it.
	MaxUploadSize ByteSize `yaml:"max_upload_size" json:"max_upload_size,omitempty"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" json:"shutdown_timeout,omitempty"`
	// UploadTTL is how long an unfinished resumable upload (an OCI chunked
	// upload) may sit untouched before it expires and its bytes are dropped.
	UploadTTL Duration `yaml:"upload_ttl" json:"upload_ttl,omitempty"`
}

// Storage configures where metadata and blobs live.
type Storage struct {
	DataDir string `yaml:"data_dir" json:"data_dir"`
	// Quota bounds the instance's physical storage (unique blobs); 0: none.
	Quota ByteSize `yaml:"quota,omitempty" json:"quota,omitempty"`
	// QuotaWarning is the percentage of a quota (instance or repository) at
	// which a warning is logged, audited and exposed as a metric.
	QuotaWarning int `yaml:"quota_warning,omitempty" json:"quota_warning,omitempty"`
	// Database selects the metadata store: SQLite in DataDir unless
	// postgres is set (scale-out).
	Database Database `yaml:"database,omitempty" json:"database,omitempty"`
	// Blobs selects the blob store: files in DataDir unless s3 is set.
	Blobs Blobs `yaml:"blobs,omitempty" json:"blobs,omitempty"`
}

// Database configures the metadata store.
type Database struct {
	Postgres *Postgres `yaml:"postgres,omitempty" json:"postgres,omitempty"`
}

// Postgres is a PostgreSQL database shared by every node.
type Postgres struct {
	// DSN is a libpq URL or key=value string without the password, e.g.
	// postgres://coffer@db.internal:5432/coffer?sslmode=verify-full.
	DSN string `yaml:"dsn,omitempty" json:"dsn,omitempty"`
	// DSNEnv names an environment variable holding the whole DSN instead.
	DSNEnv string `yaml:"dsn_env,omitempty" json:"dsn_env,omitempty"`
	// The password, from the environment or a file (never in this file).
	PasswordEnv  string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// MaxConns bounds this node's connection pool (default 20).
	MaxConns int `yaml:"max_conns,omitempty" json:"max_conns,omitempty"`
}

// Blobs configures the blob store.
type Blobs struct {
	S3 *S3 `yaml:"s3,omitempty" json:"s3,omitempty"`
}

// S3 is an S3-compatible bucket shared by every node.
type S3 struct {
	// Endpoint is host:port or an http(s) URL (http means no TLS).
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	Bucket   string `yaml:"bucket" json:"bucket"`
	Region   string `yaml:"region,omitempty" json:"region,omitempty"`
	// Prefix is prepended to every object key ("coffer/").
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// The access key ID may sit in the file; the secret key never does.
	AccessKey     string `yaml:"access_key,omitempty" json:"access_key,omitempty"`
	AccessKeyEnv  string `yaml:"access_key_env,omitempty" json:"access_key_env,omitempty"`
	AccessKeyFile string `yaml:"access_key_file,omitempty" json:"access_key_file,omitempty"`
	SecretKeyEnv  string `yaml:"secret_key_env,omitempty" json:"secret_key_env,omitempty"`
	SecretKeyFile string `yaml:"secret_key_file,omitempty" json:"secret_key_file,omitempty"`
	// PathStyle addresses the bucket as a path (MinIO, versitygw, most
	// self-hosted servers) instead of a virtual host.
	PathStyle bool `yaml:"path_style,omitempty" json:"path_style,omitempty"`
	// PartSize is the multipart part size (default 16MiB, at least 5MiB).
	PartSize ByteSize `yaml:"part_size,omitempty" json:"part_size,omitempty"`
	// Redirect answers downloads with a 307 to a presigned URL valid for
	// RedirectTTL (default 5m), so the bytes do not pass through Coffer.
	Redirect    bool     `yaml:"redirect,omitempty" json:"redirect,omitempty"`
	RedirectTTL Duration `yaml:"redirect_ttl,omitempty" json:"redirect_ttl,omitempty"`
	// CreateBucket creates the bucket at start when it is missing.
	CreateBucket bool `yaml:"create_bucket,omitempty" json:"create_bucket,omitempty"`
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format" json:"format"` // text | json
	Level  string `yaml:"level" json:"level"`   // debug | info | warn | error
}

// Repository declares one repository. The same shape is accepted by the
// management API (as JSON) and `coffer repo apply -f` (as YAML).
type Repository struct {
	Key         string `yaml:"key" json:"key"`
	Format      string `yaml:"format" json:"format"`
	Kind        string `yaml:"kind" json:"kind"`
	Tier        string `yaml:"tier,omitempty" json:"tier,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`

	// Explicit policies; unset means the tier's default.
	Overwrite     *bool `yaml:"overwrite,omitempty" json:"overwrite,omitempty"`
	Delete        *bool `yaml:"delete,omitempty" json:"delete,omitempty"`
	AnonymousRead bool  `yaml:"anonymous_read,omitempty" json:"anonymous_read,omitempty"`

	MaxUploadSize ByteSize `yaml:"max_upload_size,omitempty" json:"max_upload_size,omitempty"`
	// Quota bounds the repository's logical storage (the sum of its
	// artifacts' sizes); 0: none.
	Quota ByteSize `yaml:"quota,omitempty" json:"quota,omitempty"`

	// remote
	Upstream    *Upstream `yaml:"upstream,omitempty" json:"upstream,omitempty"`
	MetadataTTL Duration  `yaml:"metadata_ttl,omitempty" json:"metadata_ttl,omitempty"`
	NegativeTTL Duration  `yaml:"negative_ttl,omitempty" json:"negative_ttl,omitempty"`

	// virtual
	Members       []string `yaml:"members,omitempty" json:"members,omitempty"`
	DefaultDeploy string   `yaml:"default_deploy,omitempty" json:"default_deploy,omitempty"`

	// Maven holds the settings of maven repositories (nil: the defaults).
	Maven *MavenSettings `yaml:"maven,omitempty" json:"maven,omitempty"`

	// lifecycle (local repositories)
	Retention *Retention `yaml:"retention,omitempty" json:"retention,omitempty"`
	Promotion *Promotion `yaml:"promotion,omitempty" json:"promotion,omitempty"`
}

// MavenSettings are the per-repository settings of the maven format.
type MavenSettings struct {
	// VersionPolicy is release (no -SNAPSHOT versions), snapshot (only
	// -SNAPSHOT versions) or mixed; default: release on release-tier local
	// repositories, mixed elsewhere.
	VersionPolicy string `yaml:"version_policy,omitempty" json:"version_policy,omitempty"`
	// LayoutPolicy is strict (only Maven 2 layout paths are accepted, the
	// default) or permissive (other paths are stored as plain files).
	LayoutPolicy string `yaml:"layout_policy,omitempty" json:"layout_policy,omitempty"`
}

// Upstream is a remote repository's source.
type Upstream struct {
	URL          string   `yaml:"url" json:"url"`
	Username     string   `yaml:"username,omitempty" json:"username,omitempty"`
	PasswordEnv  string   `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	PasswordFile string   `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	Timeout      Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Defaults returns the embedded default configuration.
func Defaults() Config {
	return Config{
		Server: Server{
			Listen:          "127.0.0.1:8080",
			MaxUploadSize:   10 << 30,
			ShutdownTimeout: Duration(30 * time.Second),
			UploadTTL:       Duration(24 * time.Hour),
		},
		Storage:   Storage{DataDir: "./coffer-data", QuotaWarning: 70},
		Log:       Log{Format: "text", Level: "info"},
		GC:        GC{Interval: Duration(time.Hour), Grace: Duration(time.Hour)},
		Retention: RetentionJob{Interval: Duration(24 * time.Hour)},
	}
}

// Duration is a time.Duration written as "10m", "1h30m" or "90s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText implements encoding.TextUnmarshaler (YAML and JSON).
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" || s == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use units like 30s, 10m, 1h)", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ByteSize is a size in bytes written as 1048576, "512MiB", "10GB" or "1.5GiB".
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

// ParseByteSize parses a size.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*mult > 1<<62 {
		return 0, fmt.Errorf("invalid size %q (use a number of bytes or units like 512MiB, 10GB)", s)
	}
	return ByteSize(v * mult), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(p []byte) error {
	v, err := ParseByteSize(string(p))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalJSON accepts a number or a string.
func (b *ByteSize) UnmarshalJSON(p []byte) error {
	var n int64
	if json.Unmarshal(p, &n) == nil {
		*b = ByteSize(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(p, &s); err != nil {
		return fmt.Errorf("invalid size %s", p)
	}
	return b.UnmarshalText([]byte(s))
}

// String formats the size with a binary unit when it divides evenly.
func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.m == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.m, u.s)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

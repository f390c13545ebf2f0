package meta

import (
	"context"
	"fmt"
	"time"
)

// Repository is a repository row. Settings holds the repository's typed
// configuration as JSON, owned and interpreted by internal/repo.
type Repository struct {
	ID        string
	Key       string
	Format    string
	Kind      string
	Tier      string
	Settings  []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Asset is a file at a path inside a repository, pointing at a blob.
type Asset struct {
	ID          string
	RepoID      string
	Path        string
	Blob        string // sha256 digest of the content, "sha256:<hex>"
	Size        int64
	ContentType string
	SHA1        string
	MD5         string
	SHA512      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// LastDownloadedAt is updated lazily (at most once a minute per asset).
	LastDownloadedAt   time.Time
	CreatedBy          string
	Deprecated         bool
	DeprecationMessage string
	// Proxy cache bookkeeping, for assets of remote repositories.
	FetchedAt            time.Time
	UpstreamETag         string
	UpstreamLastModified string
	// ComponentID links the asset to its package version ("" for none).
	ComponentID string
	// Attributes are format-specific (JSON object; nil reads as {}).
	Attributes []byte
}

// Component is a package version grouping assets: npm name@version, Maven
// group:artifact:version, a PyPI release, an OCI manifest.
type Component struct {
	ID                 string
	RepoID             string
	Name               string
	Version            string
	Attributes         []byte // format-specific JSON object
	Deprecated         bool
	DeprecationMessage string
	CreatedAt          time.Time
	UpdatedAt          time.Time
	CreatedBy          string
}

// Tag names a target (a version, a digest) under a package name: npm
// dist-tags, OCI tags.
type Tag struct {
	RepoID    string
	Name      string
	Tag       string
	Target    string
	UpdatedAt time.Time
}

// NameQuery selects distinct component names of a repository in order.
type NameQuery struct {
	Prefix string
	After  string
	Limit  int // 0: 1000
}

// Blob is a blob row: a digest some asset references (or did).
type Blob struct {
	Digest    string
	Size      int64
	CreatedAt time.Time
	// State is "live", or "deleting" while garbage collection removes it.
	State string
	// LastRef is when a writer last leased or referenced the blob.
	LastRef time.Time
}

// User is a local account.
type User struct {
	ID           string
	Name         string
	Email        string
	PasswordHash string
	Admin        bool
	Disabled     bool
	CreatedAt    time.Time
	Groups       []string // filled by GetUser*, ignored by CreateUser
}

// Group is a named set of users.
type Group struct {
	Name        string
	Description string
	Members     []string
}

// Token is an API token. Only the hash of its secret is stored.
type Token struct {
	ID          string
	UserID      string
	UserName    string // filled on read
	Name        string
	Hash        string
	Scopes      string // JSON, interpreted by internal/auth
	ExpiresAt   time.Time
	CreatedAt   time.Time
	LastUsedAt  time.Time
	Description string
}

// Permission grants actions on repositories matching a pattern to a principal.
type Permission struct {
	ID            string
	PrincipalType string // user | group | anonymous
	Principal     string
	Repos         string // glob pattern over repository keys
	Actions       string // comma-separated, interpreted by internal/auth
	CreatedAt     time.Time
}

// AuditEvent is one line of the audit log.
type AuditEvent struct {
	ID     string
	At     time.Time
	Actor  string
	Action string
	Repo   string
	Path   string
	Detail string // JSON
}

// AssetQuery selects assets of one repository in path order.
type AssetQuery struct {
	Prefix string // only paths starting with Prefix
	After  string // only paths sorting after After (keyset pagination)
	Limit  int    // 0 means a default of 1000
}

// AssetSearch finds assets across repositories.
type AssetSearch struct {
	RepoIDs []string // empty: every repository
	Path    string   // substring of the path (case-insensitive)
	After   string   // asset ID cursor
	Limit   int
}

// Usage is a count of assets and their bytes.
type Usage struct {
	Count int64
	Bytes int64
}

// Repos stores repository definitions.
type Repos interface {
	CreateRepo(ctx context.Context, r *Repository) error
	UpdateRepo(ctx context.Context, r *Repository) error
	GetRepo(ctx context.Context, key string) (*Repository, error)
	ListRepos(ctx context.Context) ([]*Repository, error)
	// DeleteRepo removes a repository with its tags, components, links and
	// upload sessions; it fails while assets remain.
	DeleteRepo(ctx context.Context, key string) error
}

// Assets stores the files of repositories.
type Assets interface {
	GetAsset(ctx context.Context, repoID, path string) (*Asset, error)
	// PutAsset inserts or replaces the asset at (RepoID, Path). The blob row
	// must exist. It fills ID/CreatedAt on insert and keeps them on replace.
	PutAsset(ctx context.Context, a *Asset) error
	DeleteAsset(ctx context.Context, repoID, path string) error
	ListAssets(ctx context.Context, repoID string, q AssetQuery) ([]*Asset, error)
	SearchAssets(ctx context.Context, q AssetSearch) ([]*Asset, error)
	TouchDownloaded(ctx context.Context, assetID string, at time.Time) error
	// MarkFetched records a successful upstream revalidation.
	MarkFetched(ctx context.Context, assetID string, at time.Time, etag, lastModified string) error
	SetDeprecation(ctx context.Context, repoID, path string, deprecated bool, message string) error
	// FillChecksums sets the sha1/md5/sha512 of every asset of a blob where
	// they are still empty (computed after the upload); "" leaves a column.
	FillChecksums(ctx context.Context, blob, sha1, md5, sha512 string) error
	// RepoUsage returns the logical usage of every repository, by repo ID,
	// from counters kept exact by PutAsset and DeleteAsset.
	RepoUsage(ctx context.Context) (map[string]Usage, error)
	CountAssets(ctx context.Context, repoID string) (int64, error)
}

// Blobs stores blob rows.
type Blobs interface {
	// PutBlob records a blob, or leases an existing one (its last use is
	// now, which keeps garbage collection off it for the grace period). A
	// blob being collected gives errs.Unavailable: wait until its row is
	// gone, then write the bytes again.
	PutBlob(ctx context.Context, digest string, size int64) error
	GetBlob(ctx context.Context, digest string) (*Blob, error)
	// DeleteBlob removes a blob row no asset references; a referenced blob
	// gives errs.Invalid.
	DeleteBlob(ctx context.Context, digest string) error
	// ListBlobs returns blob rows in digest order after the cursor.
	ListBlobs(ctx context.Context, after string, limit int) ([]*Blob, error)
	// BlobUsage is the physical usage: unique blobs and their bytes.
	BlobUsage(ctx context.Context) (Usage, error)
	// MarkGarbage marks up to limit live blobs that nothing references and
	// nobody leased since cutoff as deleting, and returns them.
	MarkGarbage(ctx context.Context, cutoff time.Time, limit int) ([]*Blob, error)
	// MarkGarbageAfter looks at the next scan blob rows in digest order
	// after the cursor, marks those MarkGarbage would take, and returns them
	// with the cursor of the next call ("" once every row was looked at): a
	// whole collection is one pass over the table, whatever is garbage.
	MarkGarbageAfter(ctx context.Context, cutoff time.Time, after string, scan int) (marked []*Blob, next string, err error)
	// ListGarbage returns, without marking them, the blobs MarkGarbage would
	// take (digest order, after the cursor): a dry run.
	ListGarbage(ctx context.Context, cutoff time.Time, after string, limit int) ([]*Blob, error)
	// ListDeleting returns blobs marked deleting (a collection that stopped
	// half-way leaves some).
	ListDeleting(ctx context.Context, limit int) ([]*Blob, error)
}

// Users stores accounts and groups.
type Users interface {
	CreateUser(ctx context.Context, u *User) error
	UpdateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, name string) (*User, error)
	GetUserByID(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	DeleteUser(ctx context.Context, name string) error

	CreateGroup(ctx context.Context, g *Group) error
	GetGroup(ctx context.Context, name string) (*Group, error)
	ListGroups(ctx context.Context) ([]*Group, error)
	DeleteGroup(ctx context.Context, name string) error
	AddGroupMember(ctx context.Context, group, user string) error
	RemoveGroupMember(ctx context.Context, group, user string) error
}

// Tokens stores API tokens.
type Tokens interface {
	CreateToken(ctx context.Context, t *Token) error
	GetTokenByHash(ctx context.Context, hash string) (*Token, error)
	ListTokens(ctx context.Context, userID string) ([]*Token, error) // "" lists all
	DeleteToken(ctx context.Context, id string) error
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// Permissions stores permission grants.
type Permissions interface {
	CreatePermission(ctx context.Context, p *Permission) error
	ListPermissions(ctx context.Context) ([]*Permission, error)
	DeletePermission(ctx context.Context, id string) error
}

// Audit stores the audit log.
type Audit interface {
	AddAudit(ctx context.Context, e *AuditEvent) error
	// ListAudit returns events newest first; before is an event ID cursor.
	ListAudit(ctx context.Context, repo string, before string, limit int) ([]*AuditEvent, error)
}

// Components stores package versions and tags.
type Components interface {
	// PutComponent inserts the component (repo, name, version) or, when it
	// exists, updates its attributes (if not nil); c gets the stored ID and
	// creation time either way.
	PutComponent(ctx context.Context, c *Component) error
	GetComponent(ctx context.Context, repoID, name, version string) (*Component, error)
	// ListComponents returns every version of a name, oldest first.
	ListComponents(ctx context.Context, repoID, name string) ([]*Component, error)
	// ListComponentNames returns distinct names in order.
	ListComponentNames(ctx context.Context, repoID string, q NameQuery) ([]string, error)
	// ListComponentAssets returns a component's assets in path order.
	ListComponentAssets(ctx context.Context, componentID string) ([]*Asset, error)
	SetComponentDeprecation(ctx context.Context, componentID string, deprecated bool, message string) error
	// DeleteComponent removes a component with no assets left.
	DeleteComponent(ctx context.Context, componentID string) error

	SetTag(ctx context.Context, t *Tag) error
	GetTag(ctx context.Context, repoID, name, tag string) (*Tag, error)
	// ListTags returns the tags of a name in tag order ("" name: every tag
	// of the repository).
	ListTags(ctx context.Context, repoID, name string) ([]*Tag, error)
	DeleteTag(ctx context.Context, repoID, name, tag string) error
}

// Upload is a resumable upload session.
type Upload struct {
	ID        string
	RepoID    string
	Name      string
	State     []byte // the blob store's resume state
	Size      int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Link is a typed edge from a component (Source, its version) to a digest
// within a package name.
type Link struct {
	RepoID string
	Name   string
	Source string
	Target string
	Kind   string
}

// Uploads stores resumable upload sessions.
type Uploads interface {
	CreateUpload(ctx context.Context, u *Upload) error
	GetUpload(ctx context.Context, id string) (*Upload, error)
	// UpdateUpload saves new state and size.
	UpdateUpload(ctx context.Context, u *Upload) error
	DeleteUpload(ctx context.Context, id string) error
	// ListUploadsBefore returns sessions last updated before t (expired).
	ListUploadsBefore(ctx context.Context, t time.Time, limit int) ([]*Upload, error)
}

// Links stores typed edges between components and digests.
type Links interface {
	// PutLinks adds edges (existing ones are kept).
	PutLinks(ctx context.Context, links []Link) error
	ListLinksFrom(ctx context.Context, repoID, name, source string) ([]Link, error)
	ListLinksTo(ctx context.Context, repoID, name, target, kind string) ([]Link, error)
	DeleteLinksFrom(ctx context.Context, repoID, name, source string) error
	// ListRepoLinks lists every edge of a repository (replication).
	ListRepoLinks(ctx context.Context, repoID string) ([]Link, error)
}

// Settings stores instance-wide values shared by every node.
type Settings interface {
	GetSetting(ctx context.Context, key string) (string, error)
	// InitSetting stores value unless key exists, and returns the stored value.
	InitSetting(ctx context.Context, key, value string) (string, error)
	// SetSetting stores value under key, replacing any value.
	SetSetting(ctx context.Context, key, value string) error
	// DeleteSetting removes key; a missing key is not an error.
	DeleteSetting(ctx context.Context, key string) error
}

// GCHoldPrefix starts the settings keys that hold garbage collection: while
// one of them holds a value (HoldValue) later than now, no blob is marked as
// garbage. A backup holds collection so that every blob its metadata
// snapshot references is still there when it copies it.
const GCHoldPrefix = "gc.hold."

// HoldValue encodes a hold's expiry so that values compare as strings.
func HoldValue(until time.Time) string { return fmt.Sprintf("%020d", until.UnixNano()) }

// Loader is implemented by stores that restore a snapshot (a SQLite file
// written by Snapshot) into themselves, replacing every row.
type Loader interface {
	Load(ctx context.Context, path string) error
}

// Snapshotter is implemented by stores that can write a consistent copy of
// themselves while they keep serving (SQLite's VACUUM INTO).
type Snapshotter interface {
	// Snapshot writes a consistent copy of the whole database to path, a
	// file that must not exist.
	Snapshot(ctx context.Context, path string) error
}

// Tx is the set of roles available inside a transaction.
type Tx interface {
	Repos
	Assets
	Components
	Uploads
	Links
	Settings
	Blobs
	Users
	Tokens
	Permissions
	Audit
	Lifecycle
	Promotions
}

// Store is the metadata store.
type Store interface {
	Tx
	// InTx runs fn in one transaction, committed when fn returns nil.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping checks the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// Pin marks a package version (a raw path: Name the path, Version "") as in
// use: retention never expires it.
type Pin struct {
	RepoID    string
	Name      string
	Version   string
	Reason    string
	CreatedBy string
	CreatedAt time.Time
}

// Lifecycle stores what retention and promotion need beyond the other roles.
type Lifecycle interface {
	// PutPin creates or replaces a pin.
	PutPin(ctx context.Context, p *Pin) error
	DeletePin(ctx context.Context, repoID, name, version string) error
	// ListPins returns a repository's pins in (name, version) order.
	ListPins(ctx context.Context, repoID string) ([]*Pin, error)
	// LastDownloads returns, by component ID, the latest download of any
	// asset of each component of a repository that was ever downloaded.
	LastDownloads(ctx context.Context, repoID string) (map[string]time.Time, error)
	// ListLinksOfKind returns every link of one kind in a repository.
	ListLinksOfKind(ctx context.Context, repoID, kind string) ([]Link, error)
}

// Property is a key/value fact on an artifact (a package version, or a raw
// path with Version "").
type Property struct {
	RepoID    string
	Name      string
	Version   string
	Key       string
	Value     string
	UpdatedBy string
	UpdatedAt time.Time
}

// Promotion is the record of one promotion: requested, pending approval,
// refused or done.
type Promotion struct {
	ID          string
	CreatedAt   time.Time
	RequestedBy string
	Source      string // repository key
	Target      string // repository key
	Format      string
	Artifact    string // the coordinates as requested
	Name        string
	Version     string
	Digest      string
	State       string // pending | promoted | refused
	Gates       string // JSON list of gate results
	Reason      string // why it was refused
	Comment     string
	DecidedBy   string
	DecidedAt   time.Time
}

// PromotionQuery selects promotion records, newest first.
type PromotionQuery struct {
	Repo    string // source or target key
	Name    string // with Version: one artifact
	Version string
	Digest  string
	State   string
	Before  string // ID cursor
	Limit   int    // 0: 100
}

// Promotions stores properties and promotion records.
type Promotions interface {
	// SetProperty creates or replaces a property.
	SetProperty(ctx context.Context, p *Property) error
	DeleteProperty(ctx context.Context, repoID, name, version, key string) error
	// ListProperties returns an artifact's properties in key order.
	ListProperties(ctx context.Context, repoID, name, version string) ([]*Property, error)
	CreatePromotion(ctx context.Context, p *Promotion) error
	// UpdatePromotion saves state, gates, reason, decided_by and decided_at.
	UpdatePromotion(ctx context.Context, p *Promotion) error
	GetPromotion(ctx context.Context, id string) (*Promotion, error)
	ListPromotions(ctx context.Context, q PromotionQuery) ([]*Promotion, error)
}

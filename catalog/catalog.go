// Package catalog is strata's metadata store: projects, data files, cluster
// nodes and leases. One interface, Store, has two implementations that share
// their SQL: SQLite (embedded, the laptop default) and PostgreSQL
// (production). Both pass the same conformance suite.
//
// A data file is visible to queries exactly when its row is committed and not
// tombstoned. Object keys are unique, which is what makes registration
// idempotent: a flush retried after a crash cannot register a file twice.
package catalog

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"
)

// DefaultProject is the project that exists after migration; data without a
// project token goes there.
const DefaultProject = "default"

// DefaultRetention is how long a project keeps data unless told otherwise.
const DefaultRetention = 30 * 24 * time.Hour

var (
	// ErrNotFound: the named project (or other object) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: ReplaceFiles found an input that was already replaced or
	// tombstoned; nothing was changed.
	ErrConflict = errors.New("files already replaced")
	// ErrLeaseHeld: another holder owns the lease and it has not expired.
	ErrLeaseHeld = errors.New("lease held by another holder")
	// ErrLeaseLost: the caller no longer holds the lease it tried to renew.
	ErrLeaseLost = errors.New("lease lost")
)

// Project is a tenant: every row and file belongs to exactly one.
type Project struct {
	ID        string
	Name      string
	Retention time.Duration
	CreatedAt time.Time
}

// KeepFor is how long the project keeps data: its retention, or
// DefaultRetention if it has none.
func (p Project) KeepFor() time.Duration {
	if p.Retention > 0 {
		return p.Retention
	}
	return DefaultRetention
}

// File is one immutable Parquet object in the object store.
type File struct {
	Key          string // object key, unique across the catalog
	Project      string
	Table        string // "records" or "metrics"
	Partition    string // "date=YYYY-MM-DD/hour=HH"
	Level        int    // 0 = flushed by ingest, higher = compacted
	MinTime      time.Time
	MaxTime      time.Time
	Rows         int64
	Bytes        int64
	CreatedAt    time.Time // set by the catalog on registration
	TombstonedAt time.Time // zero while the file is live
	// SchemaVersion is the table schema version the file was written with
	// (schema.Version then); readers fill the columns it lacks with NULL.
	SchemaVersion int
	// TraceFilter is an opaque filter of the file's trace ids, stored on
	// registration; ListFiles leaves it empty, TraceFilters loads it.
	TraceFilter []byte
}

// FileFilter selects live files of one project and table whose time range
// overlaps [Min, Max]. A zero Min or Max leaves that side open.
type FileFilter struct {
	Project string
	Table   string
	Min     time.Time
	Max     time.Time
}

// Lease is a named, expiring claim on a piece of work.
type Lease struct {
	Name    string
	Holder  string
	Expires time.Time
}

// Node is a running strata process that announces itself with heartbeats.
type Node struct {
	ID        string
	Role      string
	Address   string
	StartedAt time.Time
	Heartbeat time.Time // set by the catalog
}

// Store is the catalog. Every method is safe for concurrent use by many
// goroutines and many processes sharing one database.
type Store interface {
	// CreateProject adds a project; it is a no-op if the ID exists.
	CreateProject(ctx context.Context, p Project) error
	// Project returns one project or ErrNotFound.
	Project(ctx context.Context, id string) (Project, error)
	// Projects lists every project, ordered by ID.
	Projects(ctx context.Context) ([]Project, error)
	// SetRetention changes how long a project keeps data, or returns
	// ErrNotFound.
	SetRetention(ctx context.Context, id string, d time.Duration) error

	// RegisterFiles records files as live. A key that is already present
	// (live or tombstoned) or was purged is left as it is, so retries —
	// even a WAL segment replayed after its files were merged away — never
	// duplicate.
	RegisterFiles(ctx context.Context, files ...File) error
	// ListFiles returns the live files matching f, ordered by MinTime.
	ListFiles(ctx context.Context, f FileFilter) ([]File, error)
	// File returns the file with the given key, live or tombstoned (its
	// object may still be read until GC deletes it), or ErrNotFound.
	File(ctx context.Context, key string) (File, error)
	// CountFiles counts the live files of a project's table.
	CountFiles(ctx context.Context, project, table string) (int, error)
	// ReplaceFiles atomically tombstones every key in old and registers
	// every file in new. If any of old is missing or already tombstoned it
	// changes nothing and returns an error wrapping ErrConflict.
	ReplaceFiles(ctx context.Context, old []string, new []File) error
	// TombstoneFiles marks live files as deleted; unknown or already
	// tombstoned keys are ignored. It returns how many it marked.
	TombstoneFiles(ctx context.Context, keys ...string) (int64, error)
	// Tombstoned lists files tombstoned before the given time, oldest first,
	// at most limit of them (all if limit <= 0).
	Tombstoned(ctx context.Context, before time.Time, limit int) ([]File, error)
	// PostponePurge dates tombstoned files as if tombstoned now, so that
	// Tombstoned lists them after the others: their objects could not be
	// deleted, and are tried again a grace period later. Live or unknown
	// keys are ignored.
	PostponePurge(ctx context.Context, keys ...string) error
	// TraceFilters returns the trace filters of the given files that have
	// one, by key.
	TraceFilters(ctx context.Context, keys ...string) (map[string][]byte, error)
	// ClusterSecret returns the deployment's secret, creating it on first
	// use: cache nodes check with it that a request comes from a node of
	// the deployment (whoever can read the catalog).
	ClusterSecret(ctx context.Context) ([]byte, error)
	// RetiredFiles returns which of keys name files that were registered
	// and are no longer live: tombstoned, or purged within PurgedKeyMemory.
	RetiredFiles(ctx context.Context, keys ...string) (map[string]bool, error)
	// PurgeFiles forgets tombstoned files whose objects have been deleted.
	// Live files are never purged. A purged key is remembered for
	// PurgedKeyMemory: registering it again in that time does nothing.
	PurgeFiles(ctx context.Context, keys ...string) error

	// AcquireLease takes the named lease for holder until now+ttl. It
	// succeeds if the lease is free, expired, or already held by holder;
	// otherwise it returns ErrLeaseHeld.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends a lease holder still owns, or returns ErrLeaseLost.
	RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// ReleaseLease gives the lease up if holder owns it; otherwise no-op.
	ReleaseLease(ctx context.Context, name, holder string) error

	// Heartbeat records that the node is alive (inserting it if new).
	Heartbeat(ctx context.Context, n Node) error
	// Nodes lists nodes of a role (all roles if empty) whose last
	// heartbeat is newer than the given time, ordered by ID.
	Nodes(ctx context.Context, role string, since time.Time) ([]Node, error)
	// Leave removes a node that stopped cleanly, so others stop looking
	// for it at once rather than when its heartbeat ages out.
	Leave(ctx context.Context, id string) error

	// Now is the catalog's clock: the database's (PostgreSQL; SQLite's is
	// the host's), read through the host's with an offset measured every
	// minute. Times compared with those the catalog stamps — creation,
	// tombstones, heartbeats — must come from it, or a host whose clock
	// runs ahead would, say, delete merged-away files before their grace.
	Now() time.Time

	// Close releases the database handles.
	Close() error
}

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Schema puts every table in this PostgreSQL schema, so several
	// deployments can share one database. Ignored by SQLite.
	Schema string
	// Now replaces the clock, for tests. Defaults to the database's (see
	// Store.Now).
	Now func() time.Time
}

// Announce records n's heartbeat: once before it returns, so other nodes
// can find n as soon as it is up, then every interval in the background
// until ctx ends.
func Announce(ctx context.Context, s Store, n Node, interval time.Duration) {
	runEvery(ctx, interval, func() {
		if err := s.Heartbeat(ctx, n); err != nil && ctx.Err() == nil {
			slog.Warn("heartbeat failed", "node", n.ID, "err", err)
		}
	})
}

// WatchNodes calls set with the static addresses plus those of the nodes
// of role with a heartbeat within the last ttl (each address once): once
// before it returns, so a node is not started blind, then every interval
// in the background until ctx ends. A failed listing keeps the last set.
func WatchNodes(ctx context.Context, s Store, role string, static []string, interval, ttl time.Duration, set func(addrs []string)) {
	WatchNodeRows(ctx, s, role, static, interval, ttl, func(fresh, _ []string) { set(fresh) })
}

// WatchNodeRows is WatchNodes that also tells set the addresses of the
// nodes whose heartbeat aged out but that did not leave (Leave): they may
// be alive and cut off from the catalog, or dead.
func WatchNodeRows(ctx context.Context, s Store, role string, static []string, interval, ttl time.Duration, set func(fresh, stale []string)) {
	runEvery(ctx, interval, func() {
		nodes, err := s.Nodes(ctx, role, time.Time{})
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("list nodes", "role", role, "err", err)
			}
			return
		}
		since := s.Now().Add(-ttl)
		fresh, stale := slices.Clone(static), []string(nil)
		for _, n := range nodes {
			switch {
			case n.Heartbeat.After(since):
				if !slices.Contains(fresh, n.Address) {
					fresh = append(fresh, n.Address)
				}
			case !slices.Contains(stale, n.Address):
				stale = append(stale, n.Address)
			}
		}
		stale = slices.DeleteFunc(stale, func(a string) bool { return slices.Contains(fresh, a) })
		set(fresh, stale)
	})
}

// runEvery runs fn at once, then every interval in the background until ctx
// ends.
func runEvery(ctx context.Context, interval time.Duration, fn func()) {
	fn()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

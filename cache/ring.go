package cache

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"

	"github.com/strata-db/strata/catalog"
)

// Role is the catalog role cache nodes announce themselves with.
const Role = "cache"

// Ring maps each object key to the cache node that owns it, by consistent
// hashing with bounded loads: when a node joins or leaves, only about 1/N
// of the keys change owner.
type Ring struct {
	mu      sync.RWMutex
	c       *consistent.Consistent
	members []string // sorted addresses
}

type member string

func (m member) String() string { return string(m) }

type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// NewRing returns a ring of the given node addresses.
func NewRing(addrs ...string) *Ring {
	r := &Ring{c: consistent.New(nil, consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    1009, // prime; many partitions so each node's share moves in small pieces
		ReplicationFactor: 40,
		Load:              1.25,
	})}
	r.Set(addrs)
	return r
}

// Set makes the ring's members exactly addrs.
func (r *Ring) Set(addrs []string) {
	addrs = slices.Clone(addrs)
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, old := range r.members {
		if _, found := slices.BinarySearch(addrs, old); !found {
			r.c.Remove(old)
		}
	}
	for _, a := range addrs {
		if _, found := slices.BinarySearch(r.members, a); !found {
			r.c.Add(member(a))
		}
	}
	r.members = addrs
}

// Members are the ring's node addresses, sorted.
func (r *Ring) Members() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.members)
}

// Owner is the address of the node that owns key, or "" for an empty ring.
func (r *Ring) Owner(key string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.members) == 0 {
		return ""
	}
	return r.c.LocateKey([]byte(key)).String()
}

// Watch keeps the ring's members equal to the static addresses plus the
// cache nodes with a catalog heartbeat within the last ttl: set once before
// it returns, then polled every interval in the background until ctx ends.
func (r *Ring) Watch(ctx context.Context, cat catalog.Store, static []string, interval, ttl time.Duration) {
	catalog.WatchNodes(ctx, cat, Role, static, interval, ttl, r.Set)
}

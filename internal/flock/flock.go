// Package flock takes exclusive advisory locks on files, to keep two
// processes (or two opens in one process) off the same local state.
package flock

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// ErrLocked: another holder has the lock.
var ErrLocked = errors.New("locked by another process")

// TryLock takes an exclusive lock on path (created if missing) or fails
// at once with ErrLocked. Calling release, or the process ending, frees it.
func TryLock(path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

// Lock is TryLock that waits for the lock until ctx ends.
func Lock(ctx context.Context, path string) (release func(), err error) {
	for {
		release, err := TryLock(path)
		if !errors.Is(err, ErrLocked) {
			return release, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

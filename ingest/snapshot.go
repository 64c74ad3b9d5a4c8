package ingest

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// Snapshots let queries read rows that are acknowledged but not yet
// flushed. They read the WAL in place: each segment file is mapped into
// memory and the record batches point into the mapping, so a query costs
// no copy and no heap however much the WAL holds (an overloaded node may
// hold a gigabyte), and concurrent queries share the pages. Each segment
// keeps an index of its frames, so only the frames of the project, table
// and hours asked for are touched.

// walMap is a read-only mapping of a segment file. Guarded by Ingester.mu.
type walMap struct {
	data []byte
	refs int  // snapshots reading it
	keep bool // cached by its sealed segment until the segment is flushed
}

// dropLocked unmaps m once no snapshot reads it and no segment keeps it.
func (m *walMap) dropLocked() {
	if m.refs == 0 && !m.keep && m.data != nil {
		syscall.Munmap(m.data)
		m.data = nil
	}
}

// unmapLocked lets go of the segment's cached mapping; it is unmapped once
// the last snapshot reading it is done.
func (s *segment) unmapLocked() {
	if m := s.mapping; m != nil {
		s.mapping = nil
		m.keep = false
		m.dropLocked()
	}
}

func mapFile(path string, size int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

// mapLocked returns a mapping of seg's committed bytes with a reference
// taken. A sealed segment's mapping is made once and kept until it is
// flushed; the active segment grows, so it is mapped afresh each time.
func (in *Ingester) mapLocked(seg *segment) (*walMap, error) {
	if seg == in.active {
		data, err := mapFile(seg.path, seg.diskBytes)
		if err != nil {
			return nil, err
		}
		return &walMap{data: data, refs: 1}, nil
	}
	if seg.mapping == nil {
		data, err := mapFile(seg.path, seg.diskBytes)
		if err != nil {
			return nil, err
		}
		seg.mapping = &walMap{data: data, keep: true}
	}
	seg.mapping.refs++
	return seg.mapping, nil
}

// Snapshot returns the rows of a project's table that are acknowledged but
// not yet in the catalog and pass filter, and the object keys those rows
// will be flushed to. Only frames of hours overlapping the filter's range
// are read. The batches point into the WAL files and are valid until
// release is called (release must be called, also after an error). A query
// that reads both must ignore catalog files with the pending keys, or it
// could count a segment twice while its flush completes.
func (in *Ingester) Snapshot(_ context.Context, project, table string, filter engine.RowFilter) (batches []arrow.RecordBatch, pending []string, release func(), err error) {
	t, err := schema.Lookup(table)
	if err != nil {
		return nil, nil, func() {}, err
	}
	min, max := filter.Min, filter.Max
	inRange := func(pk partKey) bool {
		h := pk.hourTime()
		return pk.project == project && pk.table == table &&
			(min.IsZero() || !h.Add(time.Hour).Before(min)) && (max.IsZero() || !h.After(max))
	}
	type view struct {
		m      *walMap
		frames []frameRef
	}
	var views []view
	release = func() {
		for _, b := range batches {
			b.Release()
		}
		in.mu.Lock()
		for _, v := range views {
			v.m.refs--
			v.m.dropLocked()
		}
		in.mu.Unlock()
	}
	in.mu.Lock()
	for _, s := range append(append([]*segment(nil), in.sealed...), in.active) {
		var keys []string
		for pk := range s.parts {
			if inRange(pk) {
				keys = append(keys, s.fileKey(pk))
			}
		}
		if len(keys) == 0 {
			continue
		}
		m, err := in.mapLocked(s)
		if os.IsNotExist(err) {
			continue // flushed and deleted since; its files are in the catalog
		}
		if err != nil {
			in.mu.Unlock()
			return nil, nil, release, fmt.Errorf("map wal segment %d: %w", s.seq, err)
		}
		views = append(views, view{m: m, frames: s.frames[:len(s.frames):len(s.frames)]})
		pending = append(pending, keys...)
	}
	in.mu.Unlock()

	var msgs []*ipc.Message
	for _, v := range views {
		for _, f := range v.frames {
			if !inRange(f.part) {
				continue
			}
			_, msg, err := messageInPlace(v.m.data[f.off : f.off+int64(f.n)])
			if err != nil {
				return nil, nil, release, fmt.Errorf("read wal frame at %d: %w", f.off, err)
			}
			msgs = append(msgs, msg)
		}
	}
	all, err := readInPlace(table, msgs)
	if err != nil {
		return nil, nil, release, fmt.Errorf("read wal: %w", err)
	}
	batches, err = filter.Apply(t, all)
	for _, b := range all {
		b.Release()
	}
	if err != nil {
		return nil, nil, release, err
	}
	return batches, pending, release, nil
}

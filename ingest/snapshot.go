package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	return mapOpen(f, size)
}

// mapOpen maps the first size bytes of an open file, read-only. The
// mapping outlives the file's name and its descriptor.
func mapOpen(f *os.File, size int64) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

// mapSealed maps a sealed segment's file for its flush, unless it is
// already (a snapshot may have).
func (in *Ingester) mapSealed(seg *segment) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if seg.mapping != nil {
		return nil
	}
	data, err := mapFile(seg.path, seg.diskBytes)
	if err != nil {
		return fmt.Errorf("map wal segment %d: %w", seg.seq, err)
	}
	seg.mapping = &walMap{data: data, keep: true}
	return nil
}

// mapLocked returns a mapping of seg's committed bytes with a reference
// taken. A sealed segment's mapping is made once and kept until it is
// flushed; the active segment grows, so it is mapped afresh each time.
func (in *Ingester) mapLocked(seg *segment) (*walMap, error) {
	if seg == in.active {
		// From the open file, not by name: a deleted scratch dir would
		// otherwise hide these rows from queries, as if flushed (review).
		data, err := mapOpen(in.file.f, seg.diskBytes)
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
func (in *Ingester) Snapshot(_ context.Context, project, table string, filter engine.Need) (batches []arrow.RecordBatch, pending []string, release func(), err error) {
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
	excluded := make(map[string]bool, len(filter.Exclude))
	for _, k := range filter.Exclude {
		excluded[k] = true
	}
	type view struct {
		m       *walMap
		frames  []frameRef
		parts   map[partKey]bool
		version int
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
		parts := map[partKey]bool{}
		for pk := range s.parts {
			if k := s.fileKey(pk); inRange(pk) && !excluded[k] {
				keys = append(keys, k)
				parts[pk] = true
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
		views = append(views, view{m: m, frames: s.frames[:len(s.frames):len(s.frames)], parts: parts, version: s.version})
		pending = append(pending, keys...)
	}
	in.mu.Unlock()

	msgs := map[int][]*ipc.Message{} // by schema version
	for _, v := range views {
		for _, f := range v.frames {
			if !v.parts[f.part] {
				continue
			}
			msg, err := frameMessage(v.m.data, f)
			if err != nil {
				// Damaged by the disk: its flush will lose these rows too.
				slog.Error("wal: a damaged frame is left out of a query", "err", err)
				continue
			}
			msgs[v.version] = append(msgs[v.version], msg)
		}
	}
	var all []arrow.RecordBatch
	for version := 1; version <= schema.Version; version++ {
		bs, err := readInPlace(table, version, msgs[version])
		if err != nil {
			for _, b := range all {
				b.Release()
			}
			return nil, nil, release, fmt.Errorf("read wal: %w", err)
		}
		all = append(all, bs...)
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

// loadSegment reads a sealed segment's rows back for its flush, grouped by
// the file each part becomes, in place like a snapshot: the batches point
// into the mapped file (no copy, no heap), and release lets the mapping go
// once the Parquet files are written. Every frame's checksum is verified
// again: the disk may have damaged the file since it was written, and
// then only the intact frames are flushed.
func (in *Ingester) loadSegment(seg *segment) (parts map[partKey][]arrow.RecordBatch, release func(), err error) {
	in.mu.Lock()
	m, err := in.mapLocked(seg)
	frames := seg.frames
	in.mu.Unlock()
	if err != nil {
		return nil, func() {}, fmt.Errorf("load segment %d: %w", seg.seq, err)
	}
	parts = map[partKey][]arrow.RecordBatch{}
	release = func() {
		releaseParts(parts)
		in.mu.Lock()
		m.refs--
		m.dropLocked()
		in.mu.Unlock()
	}
	msgs := map[partKey][]*ipc.Message{}
	var order []partKey
	damaged := 0
	for _, f := range frames {
		msg, err := frameMessage(m.data, f)
		if errors.Is(err, errUndecodable) {
			// It passed its checksum: written so, a bug, not the disk.
			return nil, release, fmt.Errorf("load segment %d: %w", seg.seq, err)
		}
		if err != nil {
			damaged++
			slog.Error("flush: a frame of the segment is damaged; its rows are lost", "segment", seg.seq, "err", err)
			continue
		}
		if _, ok := msgs[f.part]; !ok {
			order = append(order, f.part)
		}
		msgs[f.part] = append(msgs[f.part], msg)
	}
	var rows int64
	for _, pk := range order {
		batches, err := readInPlace(pk.table, seg.version, msgs[pk])
		if err != nil {
			return nil, release, fmt.Errorf("load segment %d: %w", seg.seq, err)
		}
		parts[pk] = batches
		for _, b := range batches {
			rows += b.NumRows()
		}
	}
	if damaged > 0 {
		// The disk damaged the file after it was written: flush what is
		// intact, as a replay would, and keep a copy for an operator.
		keepDamaged(seg.path, m.data, seg.seq, fmt.Sprintf("%d of %d frames fail their checksum at flush, %d of %d rows lost",
			damaged, len(frames), seg.rows-rows, seg.rows))
		in.m.damagedRows.Add(float64(seg.rows - rows))
	} else if rows != seg.rows {
		return nil, release, fmt.Errorf("load segment %d: read %d rows, it holds %d", seg.seq, rows, seg.rows)
	}
	return parts, release, nil
}

// frameMessage returns the IPC message of the frame f of a mapped segment,
// checking that the frame lies in data and that its checksum matches.
func frameMessage(data []byte, f frameRef) (*ipc.Message, error) {
	if f.off < frameHeader {
		return nil, fmt.Errorf("frame at %d has no header", f.off)
	}
	if n, ok := validFrame(data, f.off-frameHeader); !ok || n != int64(f.n) {
		return nil, fmt.Errorf("frame at %d fails its length or checksum", f.off)
	}
	_, msg, err := messageInPlace(data[f.off : f.off+int64(f.n)])
	if err != nil {
		return nil, fmt.Errorf("frame at %d: %w: %w", f.off, errUndecodable, err)
	}
	return msg, nil
}

// errUndecodable: a frame that passes its checksum but cannot be read.
var errUndecodable = errors.New("cannot decode a frame that passes its checksum")

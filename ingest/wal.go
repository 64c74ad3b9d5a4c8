package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/strata-db/strata/engine/schema"
)

// The write-ahead log is a directory of numbered segment files:
//
//	00000000000000000042.wal
//
// A segment starts with a 32-byte header — magic, creation time (Unix ms)
// and a random nonce — followed by frames. The magic is "STRATAW" and a
// digit, the table schema version of the segment's batches (schema.Version
// when it was written); batches of older versions are read with the
// columns they lack as NULL. Frames:
//
//	u32 payload length | u32 CRC-32C of payload | payload
//	payload = u8 table | u16 project length | project | Arrow IPC record batch message
//
// No frame crosses a segment boundary, so a torn write can only damage the
// tail of the last segment; replay stops at the first bad frame there.
// A segment is the unit of flushing: its data becomes Parquet files whose
// keys derive from the segment's nonce, so a flush retried after a crash
// produces the same keys and registers nothing twice.

const (
	segmentSuffix = ".wal"
	headerSize    = 32
	frameHeader   = 8
	// maxFrame bounds one frame so a corrupt length cannot make replay
	// allocate without limit.
	maxFrame = 1 << 30
)

var (
	walMagic   = [7]byte{'S', 'T', 'R', 'A', 'T', 'A', 'W'}
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
	tableIDs   = map[string]byte{schema.Records: 0, schema.Metrics: 1}
	tableNames = [...]string{schema.Records, schema.Metrics}
	// schemaMessages holds each table's IPC schema message as each version
	// wrote it, so that a frame's record batch message can be read back as
	// a stream.
	schemaMessages = func() map[schemaKey]*ipc.Message {
		m := map[schemaKey]*ipc.Message{}
		for _, t := range schema.Tables() {
			for v := 1; v <= schema.Version; v++ {
				s, err := t.SchemaAt(v)
				if err != nil {
					panic(err)
				}
				var buf bytes.Buffer
				p := ipc.GetSchemaPayload(s, memory.DefaultAllocator)
				if _, err := p.WritePayload(&buf); err != nil {
					panic(err)
				}
				p.Release()
				msg, err := ipc.NewMessageReader(&buf).Message()
				if err != nil {
					panic(err)
				}
				msg.Retain()
				m[schemaKey{t.Name, v}] = msg
			}
		}
		return m
	}()
)

// schemaKey names a table's schema as one version wrote it.
type schemaKey struct {
	table   string
	version int
}

func segmentName(seq uint64) string {
	return fmt.Sprintf("%020d%s", seq, segmentSuffix)
}

// bufKey names one buffer: rows of a table for a project.
type bufKey struct{ project, table string }

// encodeFrame serializes one batch as a complete frame (header included).
// It runs in the caller's goroutine so encoding is spread over cores.
//
// The IPC metadata is padded so that the frame's length and the start of
// the message body are multiples of 8 from the frame's start: frames
// follow a 32-byte header, so every body is 8-byte aligned in the file and
// a snapshot can use its buffers in place (see decodeInPlace). Readers of
// the Arrow stream format accept the padding (the metadata length covers it).
func encodeFrame(key bufKey, rec arrow.RecordBatch) ([]byte, error) {
	id, ok := tableIDs[key.table]
	if !ok {
		return nil, fmt.Errorf("encode frame: unknown table %q", key.table)
	}
	if len(key.project) > 0xffff {
		return nil, errors.New("encode frame: project id too long")
	}
	p, err := ipc.GetRecordBatchPayload(rec)
	if err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	defer p.Release()
	meta := p.Meta()
	defer meta.Release()
	prefix := 3 + len(key.project)
	metaLen := meta.Len() + (8-(prefix+meta.Len())%8)%8
	// The body's length is in the metadata: size the frame exactly, once
	// (growing it as the body is written cost 5 % of ingest CPU).
	bodyLen := ipc.NewMessage(meta, memory.NewBufferBytes(nil)).BodyLen()
	buf := bytes.NewBuffer(frameBuf(frameHeader + prefix + 8 + metaLen + int(bodyLen))[:frameHeader])
	buf.WriteByte(id)
	binary.Write(buf, binary.LittleEndian, uint16(len(key.project)))
	buf.WriteString(key.project)
	binary.Write(buf, binary.LittleEndian, uint32(ipcContinuation))
	binary.Write(buf, binary.LittleEndian, uint32(metaLen))
	buf.Write(meta.Bytes())
	buf.Write(make([]byte, metaLen-meta.Len()))
	if err := p.SerializeBody(buf); err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	b := buf.Bytes()
	payload := b[frameHeader:]
	if len(payload) > maxFrame {
		return nil, fmt.Errorf("encode frame: %d bytes exceeds the frame limit", len(payload))
	}
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, crcTable))
	return b, nil
}

const ipcContinuation = 0xFFFFFFFF

// framePool recycles frame buffers: the WAL writer is done with a frame
// once it has copied it into a group write. A fresh buffer for every frame
// was a ninth of all ingest allocated, and most of it came back from the
// OS as new pages (page faults) after the runtime had returned it.
var framePool sync.Pool // of *[]byte

// frameBuf returns a buffer of length n, recycled when one is large enough.
func frameBuf(n int) []byte {
	if p, _ := framePool.Get().(*[]byte); p != nil && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n)
}

// freeFrame gives back a frame nothing will read again.
func freeFrame(b []byte) { framePool.Put(&b) }

// payloadKey reads the key at the head of a frame payload and returns the
// Arrow IPC message after it.
func payloadKey(payload []byte) (bufKey, []byte, error) {
	if len(payload) < 3 {
		return bufKey{}, nil, errors.New("payload too short")
	}
	id := payload[0]
	if int(id) >= len(tableNames) {
		return bufKey{}, nil, fmt.Errorf("unknown table id %d", id)
	}
	n := int(binary.LittleEndian.Uint16(payload[1:3]))
	if len(payload) < 3+n {
		return bufKey{}, nil, errors.New("payload too short for project")
	}
	return bufKey{project: string(payload[3 : 3+n]), table: tableNames[id]}, payload[3+n:], nil
}

// messageInPlace reads a frame's payload back into its key and its
// record batch message, whose buffers point into payload (which must
// outlive the message and the batches read from it). A body that is not
// 8-byte aligned (a frame written before frames were padded) is copied.
func messageInPlace(payload []byte) (key bufKey, msg *ipc.Message, err error) {
	defer func() {
		// A damaged flatbuffer makes the ipc package index out of range.
		if p := recover(); p != nil {
			key, msg, err = bufKey{}, nil, fmt.Errorf("bad IPC metadata: %v", p)
		}
	}()
	key, b, err := payloadKey(payload)
	if err != nil {
		return key, nil, err
	}
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == ipcContinuation {
		b = b[4:]
	}
	if len(b) < 4 {
		return key, nil, errors.New("no IPC message")
	}
	n := int64(int32(binary.LittleEndian.Uint32(b)))
	if n < 4 || 4+n > int64(len(b)) {
		return key, nil, fmt.Errorf("bad IPC metadata length %d", n)
	}
	meta, body := memory.NewBufferBytes(b[4:4+n]), b[4+n:]
	msg = ipc.NewMessage(meta, memory.NewBufferBytes(body))
	if msg.Type() != ipc.MessageRecordBatch || msg.BodyLen() > int64(len(body)) {
		return key, nil, errors.New("frame holds no record batch")
	}
	if len(body) > 0 && uintptr(unsafe.Pointer(&body[0]))%8 != 0 {
		body = append(make([]byte, 0, msg.BodyLen()), body[:msg.BodyLen()]...) // new slices are 8-aligned
		msg = ipc.NewMessage(meta, memory.NewBufferBytes(body))
	}
	return key, msg, nil
}

// readInPlace turns record batch messages of table, written with schema
// version, into batches sharing their buffers; one reader parses the
// schema once for all of them. Batches of an older version are upgraded to
// the current schema (the columns they lack are NULL).
func readInPlace(table string, version int, msgs []*ipc.Message) ([]arrow.RecordBatch, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	sm, ok := schemaMessages[schemaKey{table, version}]
	if !ok {
		return nil, fmt.Errorf("no schema version %d of table %q", version, table)
	}
	t, _ := schema.Lookup(table)
	r, err := ipc.NewReaderFromMessageReader(&messageList{msgs: append([]*ipc.Message{sm}, msgs...)})
	if err != nil {
		return nil, err
	}
	defer r.Release()
	out := make([]arrow.RecordBatch, 0, len(msgs))
	for r.Next() {
		rec, err := t.Conform(memory.DefaultAllocator, r.RecordBatch(), t.Schema)
		if err != nil {
			release(out)
			return nil, err
		}
		out = append(out, rec)
	}
	if r.Err() != nil || len(out) != len(msgs) {
		release(out)
		return nil, fmt.Errorf("read %d of %d batches: %v", len(out), len(msgs), r.Err())
	}
	return out, nil
}

// messageList is an ipc.MessageReader over messages already in memory.
type messageList struct{ msgs []*ipc.Message }

func (l *messageList) Message() (*ipc.Message, error) {
	if len(l.msgs) == 0 {
		return nil, io.EOF
	}
	m := l.msgs[0]
	l.msgs = l.msgs[1:]
	return m, nil
}
func (l *messageList) Retain()  {}
func (l *messageList) Release() {}

// segmentFile is an open, writable segment.
type segmentFile struct {
	f    *os.File
	size int64
}

// newSegmentHeader returns a fresh header: magic and schema version,
// creation time, nonce.
func newSegmentHeader(now time.Time) (hdr [headerSize]byte, nonce [16]byte) {
	rand.Read(nonce[:])
	copy(hdr[0:7], walMagic[:])
	hdr[7] = '0' + schema.Version // one digit: versions 1 to 9 (segmentHeader)
	binary.LittleEndian.PutUint64(hdr[8:16], uint64(now.UnixMilli()))
	copy(hdr[16:32], nonce[:])
	return hdr, nonce
}

// createSegment creates segment seq, writes and fsyncs its header and the
// directory entry, so the segment exists durably before any frame is acked.
func createSegment(dir string, seq uint64, now time.Time) (*segmentFile, *segment, error) {
	path := filepath.Join(dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644) // read too: a deleted segment is mapped from it
	if errors.Is(err, os.ErrNotExist) {
		// The scratch dir was deleted under us: made again, as at start,
		// so that ingest goes on (and flushes what the deleted segment
		// held, from its open file).
		if err = os.MkdirAll(dir, 0o755); err == nil {
			f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	hdr, nonce := newSegmentHeader(now)
	if _, err := f.Write(hdr[:]); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, nil, err
	}
	seg := newSegment(seq, schema.Version, nonce, time.UnixMilli(now.UnixMilli()), path)
	seg.diskBytes = headerSize
	return &segmentFile{f: f, size: headerSize}, seg, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return errors.Join(d.Sync(), d.Close())
}

// listSegments returns the sequence numbers of the segments in dir, in
// order, and removes stray temporary files.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// segmentHeader reads the header of a segment file; ok is false if the
// file is too short or not a segment (a crash while creating it). version
// is the schema version of its batches, which may be newer than this
// build's.
func segmentHeader(r io.Reader) (version int, nonce [16]byte, created time.Time, ok bool) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || !bytes.Equal(hdr[0:7], walMagic[:]) || hdr[7] < '1' || hdr[7] > '9' {
		return 0, nonce, created, false
	}
	copy(nonce[:], hdr[16:32])
	return int(hdr[7] - '0'), nonce, time.UnixMilli(int64(binary.LittleEndian.Uint64(hdr[8:16]))), true
}

// scanFrames calls fn for each whole, valid frame of a segment's bytes
// after its header, with the offset and length of its payload. Where the
// bytes are not a valid frame — a bad checksum or length, undecodable
// contents — it looks further on for the next valid frame: finding one,
// the bytes between were damaged by the disk (their rows are lost; counted
// in skipped) and the scan goes on there; finding none, they are a torn
// tail, whose offset it returns as good. rec is read in place from data:
// it is valid only during fn.
func scanFrames(data []byte, seq uint64, version int, fn func(key bufKey, rec arrow.RecordBatch, off int64, n int)) (good int64, skipped int) {
	off := int64(headerSize)
	search := &resync{budget: resyncBudget}
	for off < int64(len(data)) {
		if n, ok := validFrame(data, off); ok {
			key, msg, err := messageInPlace(data[off+frameHeader : off+frameHeader+n])
			var recs []arrow.RecordBatch
			if err == nil {
				recs, err = readInPlace(key.table, version, []*ipc.Message{msg})
			}
			if err == nil {
				fn(key, recs[0], off+frameHeader, int(n))
				recs[0].Release()
				off += frameHeader + n
				continue
			}
		}
		next := search.next(data, off+1)
		if next < 0 {
			slog.Warn("wal: torn frame at segment tail", "segment", seq, "offset", off, "bytes", int64(len(data))-off)
			return off, skipped
		}
		if skipped == 0 {
			slog.Error("wal: damaged bytes skipped, their rows are lost; valid frames follow", "segment", seq,
				"offset", off, "bytes", next-off)
		}
		skipped++
		off = next
	}
	return off, skipped
}

// frameLen returns the payload length the frame header at off gives, if
// the whole frame fits in data (its checksum aside).
func frameLen(data []byte, off int64) (int64, bool) {
	if off+frameHeader > int64(len(data)) {
		return 0, false
	}
	n := int64(binary.LittleEndian.Uint32(data[off:]))
	return n, n > 0 && n <= maxFrame && off+frameHeader+n <= int64(len(data))
}

// validFrame reports whether a whole frame with a matching checksum starts
// at off, and its payload's length.
func validFrame(data []byte, off int64) (int64, bool) {
	n, ok := frameLen(data, off)
	if !ok {
		return 0, false
	}
	payload := data[off+frameHeader : off+frameHeader+n]
	return n, crc32.Checksum(payload, crcTable) == binary.LittleEndian.Uint32(data[off+4:])
}

// resync looks for valid frames after damaged bytes, checksumming at most
// budget bytes in all: bytes crafted to pass the cheap look at every offset
// would make the search quadratic.
type resync struct{ budget int64 }

// resyncBudget bounds the bytes one segment's replay checksums while
// searching: past it, the rest is treated as a torn tail (and copied).
const resyncBudget = 1 << 30

// next finds the first offset from from on where a valid frame starts, or
// -1. A cheap look at the payload's first bytes (table id, project, IPC
// continuation) comes before the checksum.
func (r *resync) next(data []byte, from int64) int64 {
	for o := from; o+frameHeader+7 <= int64(len(data)) && r.budget > 0; o++ {
		n := int64(binary.LittleEndian.Uint32(data[o:]))
		if n < 7 || o+frameHeader+n > int64(len(data)) {
			continue
		}
		p := data[o+frameHeader:]
		plen := int64(binary.LittleEndian.Uint16(p[1:3]))
		if int(p[0]) >= len(tableNames) || 3+plen+4 > n || binary.LittleEndian.Uint32(p[3+plen:]) != ipcContinuation {
			continue
		}
		r.budget -= n
		if _, ok := validFrame(data, o); ok {
			return o
		}
	}
	return -1
}

// readSegment replays a segment file at start: it counts its rows and cuts
// a torn tail off the file, so the segment is a sequence of whole frames
// again. Only the newest segment can have been torn by a crash (the others
// were written whole and fsynced before the next began): damage anywhere
// else, or bytes skipped as damaged, is the disk's doing, and a copy of
// the file as it was is kept beside it (segment.wal.damaged-TIME) for an
// operator. It returns nil for a file without a valid header.
func readSegment(dir string, seq uint64, newest bool) (*segment, error) {
	path := filepath.Join(dir, segmentName(seq))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", seq, err)
	}
	version, nonce, created, ok := segmentHeader(bytes.NewReader(data))
	if !ok {
		if !newest {
			keepDamaged(path, data, seq, "no valid header: none of its rows are replayed")
		}
		return nil, nil
	}
	if version > schema.Version {
		// Its frames cannot be read here, and must not be dropped.
		return nil, fmt.Errorf("segment %d was written by a newer strata (table schema version %d, this build reads 1 to %d): run that version until the WAL is flushed",
			seq, version, schema.Version)
	}
	seg := newSegment(seq, version, nonce, created, path)
	good, skipped := scanFrames(data, seq, version, func(key bufKey, rec arrow.RecordBatch, off int64, n int) {
		seg.count(key, rec, off, n)
	})
	size := int64(len(data))
	// In the newest segment a cut is a torn write — unless what is cut
	// holds a whole frame by its length, which a write that reached the
	// disk only in part rarely leaves: then it is kept too.
	_, wholeTail := frameLen(data, good)
	if skipped > 0 || (good < size && (!newest || wholeTail)) {
		keepDamaged(path, data, seq, fmt.Sprintf("%d damaged stretches skipped, %d bytes cut after offset %d", skipped, size-good, good))
	}
	if good < size {
		if err := os.Truncate(path, good); err != nil {
			return nil, fmt.Errorf("truncate segment %d: %w", seq, err)
		}
	}
	seg.diskBytes = good
	return seg, nil
}

// keepDamaged writes data, a damaged segment as read, to path.damaged-TIME,
// which replay ignores (segment numbers start again from 0 once the WAL
// is empty, so the name carries the time), and says so loudly.
func keepDamaged(path string, data []byte, seq uint64, what string) {
	dst := path + ".damaged-" + time.Now().UTC().Format("20060102T150405.000000000")
	err := writeNew(dst, data)
	slog.Error("wal: segment damaged by the disk; only its intact frames are kept, and a copy of the file for an operator",
		"segment", seq, "damage", what, "copy", dst, "copy_err", err)
}

// writeNew writes data to a file that must not exist yet, and syncs it.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Sync(), f.Close())
}

func releaseParts(parts map[partKey][]arrow.RecordBatch) {
	for _, bs := range parts {
		release(bs)
	}
}

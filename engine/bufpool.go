package engine

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"
)

// BufferPool is an Arrow allocator that recycles the buffers of
// short-lived records: the rows a request converts to (released once
// they are in WAL frames) and a flush's sorted copy (released once written
// as Parquet). Fresh memory for each made the runtime return pages to the
// OS and fault them in again; recycling took ingest from 10.3 to 9.1 µs of
// CPU per span (bench/RESULTS.md). Use it only for records whose every
// reader is done when they are released: a string read from a recycled
// buffer changes under its holder.
//
// Buffers are zeroed, as Go's allocator gives them. Those under 4 KiB are
// left to Go. Larger ones come in powers of two from C's allocator, outside
// the Go heap: the garbage collector lets the heap grow to twice what is
// live before it collects, and these buffers, half of ingest's live heap,
// would count double (bench/RESULTS.md). A released buffer waits in a free
// list of its size; one unused for a trim period or two goes back to C.
var BufferPool = newBufferPool(2 * time.Second)

func newBufferPool(trimEvery time.Duration) *bufferPool {
	return &bufferPool{mem: mallocator.NewMallocator(), trimEvery: trimEvery}
}

type bufferPool struct {
	mem       *mallocator.Mallocator
	trimEvery time.Duration
	trimOnce  sync.Once

	mu     sync.Mutex
	idle   [64][][]byte // released since the last trim
	victim [64][][]byte // released before it: freed at the next trim

	inUse, idleBytes atomic.Int64
}

const minPooled = 4 << 10

func (p *bufferPool) Allocate(size int) []byte {
	if size < minPooled {
		return make([]byte, size)
	}
	p.trimOnce.Do(func() { go p.trimLoop() })
	c := bits.Len(uint(size - 1))
	p.inUse.Add(1 << c)
	p.mu.Lock()
	b := pop(&p.idle[c])
	if b == nil {
		b = pop(&p.victim[c])
	}
	p.mu.Unlock()
	if b == nil {
		return p.mem.Allocate(1 << c)[:size] // calloc: already zero
	}
	p.idleBytes.Add(-1 << c)
	clear(b)
	return b[:size]
}

func pop(list *[][]byte) []byte {
	n := len(*list)
	if n == 0 {
		return nil
	}
	b := (*list)[n-1]
	*list = (*list)[:n-1]
	return b
}

func (p *bufferPool) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size] // the tail is zero or was written by the owner
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

func (p *bufferPool) Free(b []byte) {
	c := cap(b)
	if c < minPooled || c&(c-1) != 0 {
		return // Go's: the collector frees it
	}
	class := bits.Len(uint(c - 1))
	p.inUse.Add(-int64(c))
	p.idleBytes.Add(int64(c))
	p.mu.Lock()
	p.idle[class] = append(p.idle[class], b[:c])
	p.mu.Unlock()
}

func (p *bufferPool) trimLoop() {
	for range time.Tick(p.trimEvery) {
		p.trim()
	}
}

// trim frees the buffers released before the last trim and not reused
// since, so a burst's memory goes back once the burst is over.
func (p *bufferPool) trim() {
	p.mu.Lock()
	var free [][]byte
	for c := range p.victim {
		free = append(free, p.victim[c]...)
		p.victim[c], p.idle[c] = p.idle[c], p.victim[c][:0]
	}
	p.mu.Unlock()
	for _, b := range free {
		p.idleBytes.Add(-int64(len(b)))
		p.mem.Free(b)
	}
}

// InUse is the bytes of pooled buffers allocated and not yet released;
// Idle, those released and kept for reuse.
func (p *bufferPool) InUse() int64 { return p.inUse.Load() }
func (p *bufferPool) Idle() int64  { return p.idleBytes.Load() }

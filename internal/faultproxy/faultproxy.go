// Package faultproxy is a TCP proxy for tests that can make a real server
// (PostgreSQL, an S3-compatible store) look down or hung for a while.
package faultproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Mode is how the proxy treats connections.
type Mode int32

const (
	Pass   Mode = iota // forward to the target
	Refuse             // close every connection at once: "connection reset"
	Hang               // accept and never answer: timeouts
)

// Proxy forwards loopback connections to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// Start listens on a free loopback port and forwards to target until the
// test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.dropAll()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set switches the mode. Leaving Pass drops every open connection, so
// pooled clients notice at once.
func (p *Proxy) Set(m Mode) {
	p.mode.Store(int32(m))
	if m != Pass {
		p.dropAll()
	}
}

func (p *Proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		switch Mode(p.mode.Load()) {
		case Refuse:
			c.Close()
		case Hang:
			p.track(c) // held open, never answered, closed when the mode changes
		default:
			go p.forward(c)
		}
	}
}

func (p *Proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.track(c)
	p.track(up)
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// StartDelayHTTP is an HTTP reverse proxy to target (http://host:port)
// that waits delay before forwarding each request, like a distant object
// store. The Host header is kept, so S3 request signatures stay valid.
// It returns the proxy's host:port.
func StartDelayHTTP(t testing.TB, target string, delay time.Duration) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// Via starts a proxy to the host:port of a URL (or of its endpoint
// parameter, for S3 URLs) and returns the URL rewritten to go through it.
func Via(t testing.TB, raw string, endpointParam bool) (string, *Proxy) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !endpointParam {
		p := Start(t, u.Host)
		u.Host = p.Addr()
		return u.String(), p
	}
	q := u.Query()
	ep, err := url.Parse(q.Get("endpoint"))
	if err != nil {
		t.Fatal(err)
	}
	p := Start(t, ep.Host)
	ep.Host = p.Addr()
	q.Set("endpoint", ep.String())
	u.RawQuery = q.Encode()
	return u.String(), p
}

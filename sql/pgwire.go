package sql

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
)

// PGServer speaks the PostgreSQL wire protocol (v3), simple and extended
// query, so psql, pgx, JDBC and Grafana's PostgreSQL data source can query
// strata. Queries run through the same Executor as the HTTP API; catalog
// queries (pg_catalog, information_schema) are answered by pgCatalog.
type PGServer struct {
	exec    *Executor
	catalog *pgCatalog

	mu       sync.Mutex
	ln       net.Listener
	sessions map[uint32]*pgSession
	nextPID  atomic.Uint32
	wg       sync.WaitGroup
	closed   bool
}

// NewPGServer returns a server running queries with exec.
func NewPGServer(ctx context.Context, exec *Executor) (*PGServer, error) {
	cat, err := newPGCatalog(ctx, exec.Engine)
	if err != nil {
		return nil, err
	}
	return &PGServer{exec: exec, catalog: cat, sessions: map[uint32]*pgSession{}}, nil
}

// Serve accepts connections until Close.
func (s *PGServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
}

// Close stops accepting, cancels running queries and closes connections.
func (s *PGServer) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for _, sess := range s.sessions {
		sess.conn.Close()
		sess.cancelQuery()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return s.catalog.close()
}

// pgSession is one client connection.
type pgSession struct {
	srv     *PGServer
	conn    net.Conn
	be      *pgproto3.Backend
	pid     uint32
	secret  []byte
	project string
	// written is the text of the message being answered as the client
	// sent it: an error's position is a place in it.
	written string

	mu      sync.Mutex
	cancels map[*context.CancelFunc]bool // of its open queries: running, or portals not yet read to the end
	hungUp  bool                         // the client closed the connection

	stmts   map[string]*pgStatement
	portals map[string]*pgPortal
	inTx    bool      // between BEGIN and COMMIT/ROLLBACK: portals outlive Sync
	running *pgPortal // the portal whose statement is running, if any
	// txFailed: an error inside the BEGIN block; as in PostgreSQL, only
	// ROLLBACK (or ROLLBACK TO a savepoint) or COMMIT, which rolls back, is
	// accepted until then.
	txFailed bool
	// savepoints of the transaction, oldest first, so that rolling back
	// to or releasing one never made is an error, as in PostgreSQL.
	savepoints []string
	gone       bool // a write failed: the client hung up or stopped reading
	// idleClosed names the portals closed for sitting idle with open
	// results, until the name is bound again.
	idleClosed map[string]bool
	settings   *pgSettings // what SET stored (pgsettings.go)
}

type pgStatement struct {
	sql       string
	written   string   // as the client sent it, before pgOperators
	paramOIDs []uint32 // as the client declared them (0: unspecified)
	inferred  []uint32 // from the query
}

// paramOID is the type of parameter i: the client's, or the inferred one.
func (st *pgStatement) paramOID(i int) uint32 {
	if i < len(st.paramOIDs) && st.paramOIDs[i] != 0 {
		return st.paramOIDs[i]
	}
	if i < len(st.inferred) {
		return st.inferred[i]
	}
	return oidText
}

// paramTypes are the types of the first n parameters (see paramOID).
func (st *pgStatement) paramTypes(n int) []uint32 {
	oids := make([]uint32, n)
	for i := range oids {
		oids[i] = st.paramOID(i)
	}
	return oids
}

type pgPortal struct {
	sql     string // with its parameters bound
	text    string // the statement, where errors point
	written string // the statement as the client sent it (pgStatement)
	formats []int16
	result  *pgResult // opened by Describe, read by Execute
	done    bool      // run to completion: Execute again returns no rows
}

func (s *PGServer) serveConn(raw net.Conn) {
	defer raw.Close()
	c := &hangupConn{Conn: raw}
	// A bug met by one session ends that session, not the server.
	defer func() {
		if r := recover(); r != nil {
			slog.Error("postgres wire: session failed", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	sess := &pgSession{srv: s, conn: c, be: pgproto3.NewBackend(c, c), project: catalog.DefaultProject,
		stmts: map[string]*pgStatement{}, portals: map[string]*pgPortal{}, settings: &pgSettings{}}
	sess.be.SetMaxBodyLen(maxMessageBytes)
	c.SetDeadline(time.Now().Add(30 * time.Second)) // for the start-up only
	if !sess.startup() {
		return
	}
	c.SetDeadline(time.Time{})
	s.mu.Lock()
	s.sessions[sess.pid] = sess
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, sess.pid)
		s.mu.Unlock()
		sess.closePortals()
	}()
	sess.loop()
}

// startup negotiates the connection; false ends it.
func (sess *pgSession) startup() bool {
	for {
		msg, err := sess.be.ReceiveStartupMessage()
		if err != nil {
			// A client speaking something else: tell it, in its own terms
			// if we can, and hang up. The server keeps serving others.
			sess.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "08P01",
				Message: "invalid start-up packet: this port speaks the PostgreSQL protocol"})
			sess.be.Flush()
			return false
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := sess.conn.Write([]byte{'N'}); err != nil {
				return false
			}
		case *pgproto3.CancelRequest:
			sess.srv.cancel(m.ProcessID, m.SecretKey)
			return false
		case *pgproto3.StartupMessage:
			sess.pid = sess.srv.nextPID.Add(1)
			settings, err := newPGSettings(m.Parameters)
			if err != nil {
				code, msg := sqlState(err)
				sess.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: code, Message: msg})
				sess.be.Flush()
				return false
			}
			sess.settings = settings
			sess.secret = make([]byte, 4)
			rand.Read(sess.secret)
			sess.be.Send(&pgproto3.AuthenticationOk{})
			for k, v := range map[string]string{
				"server_version": "16.0 (strata)", "server_encoding": "UTF8", "client_encoding": "UTF8",
				"DateStyle": "ISO, MDY", "TimeZone": "UTC", "integer_datetimes": "on",
				"standard_conforming_strings": "on", "application_name": settings.start["application_name"],
				"IntervalStyle": "postgres", "is_superuser": "off",
			} {
				sess.be.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
			}
			sess.be.Send(&pgproto3.BackendKeyData{ProcessID: sess.pid, SecretKey: sess.secret})
			sess.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			return sess.be.Flush() == nil
		default:
			return false
		}
	}
}

func (s *PGServer) cancel(pid uint32, secret []byte) {
	s.mu.Lock()
	sess := s.sessions[pid]
	s.mu.Unlock()
	if sess != nil && string(sess.secret) == string(secret) {
		sess.cancelQuery()
	}
}

func (sess *pgSession) cancelQuery() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for c := range sess.cancels {
		(*c)()
	}
}

// queryContext returns the context of a query that a CancelRequest (or the
// client hanging up) stops.
// Every open query of the session is stopped, a portal suspended between
// Executes included; cancel also forgets it.
func (sess *pgSession) queryContext() (context.Context, context.CancelFunc) {
	ctx, stop := context.WithCancel(context.Background())
	key := &stop
	sess.mu.Lock()
	if sess.cancels == nil {
		sess.cancels = map[*context.CancelFunc]bool{}
	}
	sess.cancels[key] = true
	if sess.hungUp {
		stop()
	}
	sess.mu.Unlock()
	return ctx, func() {
		stop()
		sess.mu.Lock()
		delete(sess.cancels, key)
		sess.mu.Unlock()
	}
}

// hangUp cancels the running query, and any the session would start.
func (sess *pgSession) hangUp() {
	sess.mu.Lock()
	sess.hungUp = true
	sess.mu.Unlock()
	sess.cancelQuery()
}

// maxMessageBytes bounds one protocol message: the longest query text
// and some room for a Bind's parameters.
const maxMessageBytes = MaxSQLBytes + 1<<20

// hangupConn is a session's connection that can watch, while a query runs,
// for the client hanging up: a read in the background which, if the
// connection ends, cancels the query (as net/http does for requests).
// Bytes that read gets early (the client's next message) are handed to the
// protocol reader afterwards.
type hangupConn struct {
	net.Conn
	mu      sync.Mutex
	pending []byte
	err     error // the connection's end, seen by the background read

	// onIdle, if set, runs (once, in the reading goroutine) when a read
	// has waited idleAfter for the client.
	onIdle    func()
	idleAfter time.Duration
}

func (c *hangupConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.mu.Unlock()
		return n, nil
	}
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if c.onIdle == nil {
		return c.Conn.Read(p)
	}
	c.Conn.SetReadDeadline(time.Now().Add(c.idleAfter))
	n, err := c.Conn.Read(p)
	c.Conn.SetReadDeadline(time.Time{})
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		idle := c.onIdle
		c.onIdle = nil
		idle()
		return c.Conn.Read(p)
	}
	return n, err
}

// watch reads in the background until stop, calling onHangup if the
// connection ends meanwhile.
func (c *hangupConn) watch(onHangup func()) (stop func()) {
	c.mu.Lock()
	busy := len(c.pending) > 0 || c.err != nil
	c.mu.Unlock()
	if busy {
		return func() {} // the client has already sent more, or is gone
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		c.mu.Lock()
		c.pending = append(c.pending, buf[:n]...)
		ended := err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
		if ended {
			c.err = err
		}
		c.mu.Unlock()
		if ended {
			onHangup()
		}
	}()
	return func() {
		c.Conn.SetReadDeadline(time.Unix(1, 0)) // wakes the read
		<-done
		c.Conn.SetReadDeadline(time.Time{})
	}
}

var (
	errPortalsHoldSlots = fmt.Errorf("%w: this session's open portals hold them; read one to its end or close it (in a transaction block, which this error fails: ROLLBACK)", ErrBusy)
	errPortalsWaited    = fmt.Errorf("%w: no slot came free within the time limit while this session's open portals hold some; read one to its end or close it (in a transaction block, which this error fails: ROLLBACK)", ErrBusy)
)

// slotWait bounds how long a query of a session that holds query slots
// (open portals) waits for another: not at all when the session holds
// every slot (it would wait for itself), at most the time limit when it
// holds some (sessions each holding one and waiting for another would
// otherwise wait for each other forever).
func (sess *pgSession) slotWait(ctx context.Context) context.Context {
	switch n := sess.heldSlots(); {
	case n == 0:
		return ctx
	case n >= sess.srv.exec.Limiter.Slots():
		return withQueueLimit(ctx, 0, errPortalsHoldSlots)
	default:
		return withQueueLimit(ctx, sess.srv.exec.Engine.Timeout(), errPortalsWaited)
	}
}

// heldSlots counts the query slots the session's portals hold: those with
// an open query result (a fixed result holds none).
func (sess *pgSession) heldSlots() int {
	n := 0
	for _, p := range sess.portals {
		if p.result != nil && p.result.rows != nil {
			n++
		}
	}
	return n
}

// closeIdlePortals closes the portals of a session idle with open results
// for longer than a query may run, remembering their names for the error.
func (sess *pgSession) closeIdlePortals() {
	if sess.idleClosed == nil {
		sess.idleClosed = map[string]bool{}
	}
	for name, p := range sess.portals {
		if p.result != nil {
			sess.idleClosed[name] = true
		}
	}
	sess.closePortals()
}

// missingPortal is the error for a portal the session does not have.
func (sess *pgSession) missingPortal(name string) error {
	if sess.idleClosed[name] {
		return &pgError{code: "57014", msg: fmt.Sprintf("portal %q was closed: the session left it open and idle for longer than a query may run (%v)",
			name, sess.srv.exec.Engine.Timeout())}
	}
	return &pgError{code: "34000", msg: fmt.Sprintf("portal %q does not exist", name)}
}

func (sess *pgSession) closePortals() { sess.closePortalsBut(nil) }

// closePortalsBut closes every portal but keep.
func (sess *pgSession) closePortalsBut(keep *pgPortal) {
	for name, p := range sess.portals {
		if p == keep {
			continue
		}
		if p.result != nil {
			p.result.release()
		}
		delete(sess.portals, name)
	}
}

func (sess *pgSession) loop() {
	skipToSync := false // after an error in the extended protocol
	for {
		// Open portals hold query slots: a client that leaves them idle
		// (inside BEGIN, or never sending Sync) for longer than a query
		// may run loses them.
		conn := sess.conn.(*hangupConn)
		conn.onIdle, conn.idleAfter = nil, 0
		if sess.heldSlots() > 0 {
			conn.onIdle, conn.idleAfter = sess.closeIdlePortals, sess.srv.exec.Engine.Timeout()
		}
		msg, err := sess.be.Receive()
		conn.onIdle = nil
		if err != nil {
			var tooLong *pgproto3.ExceededMaxBodyLenErr
			switch {
			case errors.As(err, &tooLong):
				sess.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "54000",
					Message: fmt.Sprintf("message of %d bytes is over the limit of %d", tooLong.ActualBodyLen, maxMessageBytes)})
			case !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed):
				sess.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "08P01", Message: "invalid message: " + err.Error()})
			}
			sess.be.Flush()
			return
		}
		if skipToSync {
			if _, ok := msg.(*pgproto3.Sync); !ok {
				continue
			}
			skipToSync = false
		}
		var perr error
		var stopWatch func()
		switch msg.(type) {
		case *pgproto3.Query, *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute:
			stopWatch = sess.conn.(*hangupConn).watch(sess.hangUp)
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			sess.written = m.String
			if q, err := pgOperators(m.String); err != nil {
				sess.sendError(err)
			} else {
				sess.simpleQuery(q)
			}
			sess.be.Send(&pgproto3.ReadyForQuery{TxStatus: sess.txStatus()})
		case *pgproto3.Parse:
			sess.written = m.Query
			if m.Query, perr = pgOperators(m.Query); perr == nil {
				perr = sess.parse(m, sess.written)
			}
		case *pgproto3.Bind:
			sess.written = sess.writtenOf('S', m.PreparedStatement)
			perr = sess.bind(m)
		case *pgproto3.Describe:
			sess.written = sess.writtenOf(m.ObjectType, m.Name)
			perr = sess.describe(m)
		case *pgproto3.Execute:
			sess.written = sess.writtenOf('P', m.Portal)
			perr = sess.execute(m)
		case *pgproto3.Close:
			if m.ObjectType == 'S' {
				delete(sess.stmts, m.Name)
			} else if p := sess.portals[m.Name]; p != nil {
				if p.result != nil {
					p.result.release()
				}
				delete(sess.portals, m.Name)
			}
			sess.be.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			// Sync ends the implicit transaction, and its portals with it
			// (each may hold a query slot); in a BEGIN block they live on.
			if sess.inTx {
				sess.closeUnnamedPortal()
			} else {
				sess.closePortals()
			}
			sess.be.Send(&pgproto3.ReadyForQuery{TxStatus: sess.txStatus()})
		case *pgproto3.Flush:
		case *pgproto3.Terminate:
			return
		case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			// Outside COPY, PostgreSQL ignores these too.
		case *pgproto3.FunctionCall:
			sess.sendError(&pgError{code: "0A000", msg: "the function call protocol is not supported; call functions in a query"})
			sess.be.Send(&pgproto3.ReadyForQuery{TxStatus: sess.txStatus()})
		default:
			sess.sendError(&pgError{code: "08P01", msg: fmt.Sprintf("unexpected message %T", msg)})
			sess.be.Send(&pgproto3.ReadyForQuery{TxStatus: sess.txStatus()})
		}
		if stopWatch != nil {
			stopWatch()
		}
		if perr != nil {
			sess.sendError(perr)
			skipToSync = true
		}
		if sess.gone || sess.flush() != nil {
			return
		}
	}
}

// flush writes what was sent. A client that stops reading must not hold
// the session's query slots (DuckDB stops at the time limit, but a write
// would block on the socket): a flush that cannot finish within the time
// limit fails, and a failed write ends the session, since what was
// written of a message is lost.
func (sess *pgSession) flush() error {
	sess.conn.SetWriteDeadline(time.Now().Add(sess.srv.exec.Engine.Timeout()))
	err := sess.be.Flush()
	if err != nil {
		slog.Info("postgres wire: client gone or not reading; session ended", "err", err)
		sess.gone = true
	}
	return err
}

// txStatus is ReadyForQuery's transaction status: in a failed BEGIN
// block, in one, or idle.
func (sess *pgSession) txStatus() byte {
	switch {
	case sess.inTx && sess.txFailed:
		return 'E'
	case sess.inTx:
		return 'T'
	}
	return 'I'
}

func (sess *pgSession) closeUnnamedPortal() {
	if p := sess.portals[""]; p != nil {
		if p.result != nil {
			p.result.release()
		}
		delete(sess.portals, "")
	}
}

// writtenOf is the text the client sent for a statement ('S') or a
// portal ('P') of that name, empty if there is none.
func (sess *pgSession) writtenOf(kind byte, name string) string {
	if kind == 'S' {
		if st := sess.stmts[name]; st != nil {
			return st.written
		}
		return ""
	}
	if p := sess.portals[name]; p != nil {
		return p.written
	}
	return ""
}

// pgError is an error with a SQLSTATE.
type pgError struct {
	code, msg string
}

func (e *pgError) Error() string { return e.msg }

// sqlState picks the SQLSTATE of an error.
func sqlState(err error) (string, string) {
	var pe *pgError
	if errors.As(err, &pe) {
		return pe.code, pe.msg
	}
	if errors.Is(err, ErrNUL) {
		return "22021", err.Error() // character_not_in_repertoire
	}
	var qe *engine.QueryError
	switch {
	case errors.As(err, &qe):
		msg := qe.Msg
		switch {
		case errors.Is(err, engine.ErrTimeout):
			return "57014", msg // query_canceled
		case errors.Is(err, engine.ErrTooManyRows):
			return "54000", msg // program_limit_exceeded
		case strings.HasPrefix(msg, "syntax error"):
			return "42601", msg
		case strings.HasPrefix(msg, "query too complex"):
			return "54001", msg // statement_too_complex
		case strings.Contains(msg, "not allowed") || strings.Contains(msg, "is not available") || strings.HasPrefix(msg, "only queries"):
			return "42501", msg // insufficient_privilege
		case strings.Contains(msg, "Out of Memory"):
			return "53200", msg
		case strings.Contains(msg, "Binder Error") || strings.Contains(msg, "Catalog Error"):
			return "42703", msg
		case strings.Contains(msg, "Out of Range Error") || strings.Contains(msg, "Overflow"):
			return "22003", msg // numeric_value_out_of_range
		case strings.Contains(msg, "Conversion Error"):
			return "22P02", msg // invalid_text_representation: 'x'::int
		case strings.Contains(msg, "Division by zero"):
			return "22012", msg
		}
		return "22000", msg
	case errors.Is(err, ErrBusy):
		return "53300", err.Error() // too_many_connections
	case errors.Is(err, ErrCatalogUnavailable):
		return "57P03", err.Error() // cannot_connect_now
	case errors.Is(err, ErrTooLong):
		return "54000", err.Error() // program_limit_exceeded
	case errors.Is(err, context.Canceled):
		return "57014", "canceling statement due to user request"
	}
	return "XX000", err.Error()
}

func (sess *pgSession) sendError(err error) {
	code, msg := sqlState(err)
	msg = operatorNames(msg)
	switch {
	case sess.gone:
		// A write failed: nothing more can be answered, and the session
		// ends (loop).
		return
	case code == "XX000":
		slog.Error("postgres wire: query failed", "err", err)
	}
	sess.txFailed = sess.inTx
	msg, pos := positionIn(msg, sess.written)
	sess.be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: code, Message: msg, Position: int32(pos)})
}

// simpleQuery runs the statements of a Query message in turn.
func (sess *pgSession) simpleQuery(text string) {
	stmts := splitStatements(text)
	if len(stmts) == 0 {
		sess.be.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	for _, sql := range stmts {
		res, err := sess.run(sql)
		if err != nil {
			sess.sendError(err)
			return
		}
		if res.fetch != nil {
			res.fetch.describe(sess.be, nil) // as PostgreSQL, each FETCH
			res.fetch.fetching = true
			_, err := sess.sendRows(res.fetch, nil, res.fetchN)
			res.fetch.fetching = false
			if err != nil {
				sess.sendError(err)
				return
			}
			continue
		}
		// A command without rows gets only its CommandComplete here;
		// NoData answers a Describe.
		withDescription := (res.rows != nil || res.fixed != nil) && res.copy == nil
		if err := sess.sendResult(res, nil, withDescription); err != nil {
			sess.sendError(err)
			return
		}
	}
}

// sessionStatement answers statements about the session itself, which
// strata accepts and ignores (SET, BEGIN…) or answers (SHOW); ok is false
// for anything else.
var (
	discardAll       = regexp.MustCompile(`(?is)^DISCARD\s+ALL\b`)
	deallocate       = regexp.MustCompile(`(?is)^DEALLOCATE\s+(?:PREPARE\s+)?("(?:[^"]|"")+"|[^\s;]+)`)
	ignoredStatement = regexp.MustCompile(`(?is)^(SET|RESET|BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|DISCARD|DEALLOCATE|UNLISTEN|SAVEPOINT|RELEASE)\b`)
	showStatement    = regexp.MustCompile(`(?is)^SHOW\s+(.+?)\s*;?\s*$`)
	rollbackTo       = regexp.MustCompile(`(?is)^ROLLBACK\s+(WORK\s+|TRANSACTION\s+)?TO\b`)
	// savepointStatement names the savepoint of SAVEPOINT, RELEASE and
	// ROLLBACK TO: a quoted identifier, or a word PostgreSQL folds to lower
	// case.
	savepointStatement = regexp.MustCompile(`(?is)^(?:SAVEPOINT|RELEASE(?:\s+SAVEPOINT)?|ROLLBACK(?:\s+(?:WORK|TRANSACTION))?\s+TO(?:\s+SAVEPOINT)?)\s+("(?:[^"]|"")+"|[^\s;"]+)\s*;?$`)
	andChain           = regexp.MustCompile(`(?is)\sAND\s+CHAIN\s*;?$`)
	endsFailedTx       = regexp.MustCompile(`(?is)^(ROLLBACK|ABORT|COMMIT|END)\b`)
)

// sessionText is sql as the session-statement patterns read it: comments
// (anywhere, nested too) and the contents of string literals blanked, and
// the space around trimmed — tools put comments in front, between words
// (ROLLBACK /* why */ TO s) and after.
func sessionText(sql string) string {
	return strings.Trim(engine.BlankLiterals(sql), " \t\n\r\f\v")
}

// shownSetting returns the setting a SHOW statement names, lower case.
func shownSetting(sql string) (string, bool) {
	m := showStatement.FindStringSubmatch(sessionText(sql))
	if m == nil {
		return "", false
	}
	// Words are compared with single spaces (a comment between them was
	// blanked to several).
	return strings.ToLower(strings.Join(strings.Fields(strings.Trim(m[1], `"`)), " ")), true
}

var showValues = map[string]string{
	"transaction isolation level": "read committed", "server_version": "16.0 (strata)",
	"timezone": "UTC", "time zone": "UTC", "datestyle": "ISO, MDY", "standard_conforming_strings": "on",
	"client_encoding": "UTF8", "server_encoding": "UTF8", "search_path": "main", "max_identifier_length": "63",
	"integer_datetimes": "on", "lc_collate": "C", "lc_ctype": "C", "server_version_num": "160000",
	// Drivers and tools (JDBC, DBeaver, Metabase) ask for these by their
	// parameter names; strata only reads, so every transaction is read only.
	"transaction_isolation": "read committed", "default_transaction_isolation": "read committed",
	"transaction_read_only": "on", "default_transaction_read_only": "on", "intervalstyle": "postgres",
	"lc_messages": "C", "lc_numeric": "C", "lc_time": "C", "lc_monetary": "C",
	"is_superuser": "off", "in_hot_standby": "off",
}

// runPortal runs a portal's statement, as the one running: a COMMIT or
// ROLLBACK it holds closes the other portals, not this one.
func (sess *pgSession) runPortal(p *pgPortal) (*pgResult, error) {
	sess.running = p
	defer func() { sess.running = nil }()
	res, err := sess.run(p.sql)
	return res, repoint(err, p.sql, p.text)
}

// setTimeZone matches SET TIME ZONE x, SET TimeZone = x and TO x, on the
// text with comments and literals blanked.
var setTimeZone = regexp.MustCompile(`(?is)^SET\s+(?:SESSION\s+|LOCAL\s+|GLOBAL\s+)?(?:TIME\s+ZONE|"?TimeZone"?\s*(?:=|\bTO\b))\s*(.*?)\s*;?\s*$`)

// utcNames are the time zones that are UTC.
var utcNames = map[string]bool{"utc": true, "etc/utc": true, "gmt": true, "etc/gmt": true, "z": true, "zulu": true,
	"uct": true, "universal": true, "+00": true, "+00:00": true, "00:00": true, "0": true, "default": true, "local": true,
	"etc/gmt+0": true, "etc/gmt-0": true, "etc/gmt0": true, "gmt+0": true, "gmt-0": true, "gmt0": true,
	"etc/universal": true, "etc/uct": true, "etc/zulu": true, "greenwich": true, "etc/greenwich": true}

// checkTimeZone refuses a SET of the session time zone to anything but
// UTC: strata reads and writes times in UTC, and accepting the SET would
// let a client take its literals for local times when they are UTC.
func checkTimeZone(sql string) error {
	blanked := engine.BlankLiterals(sql) // byte for byte: offsets hold in sql
	start := skipSpace(blanked, 0)
	m := setTimeZone.FindStringSubmatchIndex(blanked[start:])
	if m == nil {
		return nil
	}
	// The value is read from the text, its literal whole, its comments
	// left out: 'UTC', INTERVAL '+00:00' HOUR TO MINUTE, LOCAL.
	zone := strings.Join(strings.Fields(blanked[start+m[2]:start+m[3]]), " ")
	if q := strings.IndexByte(blanked[start+m[2]:start+m[3]], '\''); q >= 0 {
		from := start + m[2] + q + 1
		to := from + strings.IndexByte(blanked[from:], '\'')
		zone = sql[from:to]
	}
	zone = strings.Trim(zone, `" `)
	if utcNames[strings.ToLower(zone)] {
		return nil
	}
	return &pgError{code: "0A000", msg: fmt.Sprintf("the time zone is UTC and cannot be set to %q: "+
		"write times with their offset ('2026-01-02 03:04:05+01') or convert with AT TIME ZONE in the query", zone)}
}

// run executes one statement: a session statement, a catalog query, or a
// query over the project's data.
func (sess *pgSession) run(sql string) (*pgResult, error) {
	if err := sess.checkFailedTx(sql); err != nil {
		return nil, err
	}
	text := sessionText(sql)
	if m := ignoredStatement.FindStringSubmatch(text); m != nil {
		tag := strings.ToUpper(strings.Fields(m[1])[0])
		switch tag {
		case "START":
			tag = "BEGIN"
		case "END":
			tag = "COMMIT"
		case "ABORT":
			tag = "ROLLBACK"
		case "DISCARD":
			tag = "DISCARD ALL"
		}
		switch {
		case tag == "SET":
			if err := checkTimeZone(sql); err != nil {
				return nil, err
			}
			if err := sess.applySet(sql); err != nil {
				return nil, err
			}
		case tag == "RESET":
			if err := sess.applySet(sql); err != nil {
				return nil, err
			}
		case tag == "DISCARD ALL":
			sess.settings.resetAll()
			if discardAll.MatchString(text) {
				clear(sess.stmts) // as PostgreSQL's: pgx's pool resets sessions with it
			}
		case tag == "DEALLOCATE":
			// Drivers free the statements they prepared with it (pgx's
			// statement cache): a name left would refuse their next Parse.
			if m := deallocate.FindStringSubmatch(text); m != nil {
				if strings.EqualFold(m[1], "ALL") {
					clear(sess.stmts)
				} else {
					delete(sess.stmts, foldName(m[1]))
				}
			}
		case tag == "BEGIN":
			if !sess.inTx {
				sess.inTx, sess.savepoints = true, nil
				sess.settings.begin()
			}
		case tag == "SAVEPOINT" || tag == "RELEASE" || tag == "ROLLBACK" && rollbackTo.MatchString(text):
			if err := sess.savepoint(tag, text); err != nil {
				return nil, err
			}
		case tag == "COMMIT" || tag == "ROLLBACK":
			chain := andChain.MatchString(text)
			if chain && !sess.inTx {
				return nil, &pgError{code: "25P01", msg: tag + " AND CHAIN can only be used in transaction blocks"}
			}
			if sess.inTx && sess.txFailed {
				tag = "ROLLBACK" // a failed transaction cannot commit
			}
			if sess.inTx {
				// The transaction's portals end with it and free their
				// query slots — but the one running this statement, whose
				// Execute may follow (after a Describe).
				sess.closePortalsBut(sess.running)
				sess.settings.end(tag == "COMMIT")
			}
			// AND CHAIN starts the next transaction at once.
			sess.inTx, sess.txFailed, sess.savepoints = chain, false, nil
			if chain {
				sess.settings.begin()
			}
		}
		return &pgResult{tag: tag}, nil
	}
	if res, ok, err := sess.cursorStatement(sql); ok {
		return res, err
	}
	if name, ok := shownSetting(sql); ok {
		if name == "all" {
			rows := make([][]string, 0, len(showValues)+len(sess.settings.current))
			for k, v := range showValues {
				rows = append(rows, []string{k, v, ""})
			}
			for k, v := range sess.settings.current {
				rows = append(rows, []string{k, v, ""})
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
			return constResult([]string{"name", "setting", "description"}, rows), nil
		}
		v, ok := sess.setting(name)
		if !ok {
			return nil, &pgError{code: "42704", msg: fmt.Sprintf("unrecognized configuration parameter %q", name)}
		}
		res := constResult([]string{showColumn(name)}, [][]string{{v}})
		res.tag = "SHOW"
		return res, nil
	}
	return sess.runQuery(sess.currentSettings(sql), sess.settings.statementTimeout())
}

// showColumn names SHOW's column as PostgreSQL does: after the setting,
// spelled as PostgreSQL spells it (SHOW timezone gives "TimeZone").
func showColumn(name string) string {
	if name == "time zone" {
		name = "timezone"
	}
	for pg, show := range pgSettingNames {
		if show == name {
			return pg
		}
	}
	return name
}

// setting is a setting's value as SHOW gives it: the session's, or the
// one strata fixes.
func (sess *pgSession) setting(name string) (string, bool) {
	if v, ok := sess.settings.current[name]; ok {
		return v, true
	}
	v, ok := showValues[name]
	return v, ok
}

// currentSetting matches [pg_catalog.]current_setting('name'[,
// missing_ok]) on text with literals and quoted names blanked but their
// quotes kept.
var currentSetting = regexp.MustCompile(`(?i)(?:\bpg_catalog\s*\.\s*)?\bcurrent_setting\s*\(\s*'([^']*)'\s*(?:,\s*\w+\s*)?\)`)

// currentSettings writes current_setting('name') as the session's value
// of that setting, as SHOW gives it (QA: it answered only the values
// strata fixes, so current_setting('application_name') failed after a
// SET that SHOW saw). Other calls are left to the catalog's macro.
func (sess *pgSession) currentSettings(sql string) string {
	if !strings.Contains(strings.ToLower(sql), "current_setting") {
		return sql
	}
	b := blankIdentifiers(engine.BlankLiterals(sql))
	ms := currentSetting.FindAllStringSubmatchIndex(b, -1)
	if ms == nil {
		return sql
	}
	out := splicer{src: sql}
	for _, m := range ms {
		name := strings.ToLower(strings.TrimSpace(sql[m[2]:m[3]]))
		v, ok := sess.setting(name)
		if !ok {
			continue
		}
		// A subquery, to keep the column's name: current_setting.
		out.replace(m[0], m[1], "(SELECT "+quoteLiteral(v)+" AS current_setting)")
	}
	return out.text()
}

// runQuery runs a query (or a COPY of one) over the catalog or the data,
// within timeout if it is shorter than the server's limit (0: none).
func (sess *pgSession) runQuery(sql string, timeout time.Duration) (*pgResult, error) {
	query, copyOpts, isCopy, err := parseCopy(sql)
	if err != nil {
		return nil, err
	}
	stmt := sql
	if isCopy {
		sql = query
	}
	ctx, cancel := sess.queryContext()
	ctx = sess.slotWait(ctx)
	written := stmt // whose quotes decide the columns' names
	if sess.running != nil {
		written = sess.running.text
	}
	res, ok, err := sess.srv.catalog.answer(ctx, sess.srv.exec.Limiter, sql, written)
	if !ok {
		var rows *Result
		if rows, err = sess.srv.exec.Run(ctx, sess.project, Request{SQL: sql, Timeout: timeout, Written: written, Postgres: true}); err == nil {
			res = &pgResult{rows: rows}
		}
	}
	if err != nil {
		cancel()
		return nil, repoint(err, sql, stmt) // COPY's query is part of the statement
	}
	res.onRelease(cancel)
	res.copy = copyOpts
	return res, nil
}

// isCopyOut reports whether sql is a COPY … TO STDOUT, which has no
// parameters and describes as NoData.
func isCopyOut(sql string) bool {
	_, _, ok, _ := parseCopy(sql)
	return ok
}

// pgResult is a result to send: rows of a query, a fixed table, or only a
// command tag.
type pgResult struct {
	rows   *Result
	fixed  *fixedRows
	tag    string
	copy   *copyOut // rows or fixed sent as COPY data (COPY … TO STDOUT)
	cancel context.CancelFunc
	// cursor: the result of a DECLAREd cursor, read by FETCH; fetch: a
	// FETCH statement's request of n rows (0: all) from that cursor.
	cursor   bool
	fetch    *pgResult
	fetchN   int32
	fetching bool // being sent for a FETCH statement: FETCH tags
	drained  bool // rows read to their end

	// Where sending stopped, for a portal suspended by a row limit.
	batch      arrow.RecordBatch // of rows, the one being sent
	row        int               // next row of batch (or of fixed)
	sent, mark int64             // rows sent in all; at the start of this Execute
}

// nullText marks a NULL among fixed rows' values.
const nullText = "\x00"

type fixedRows struct {
	names []string
	rows  [][]string
}

func constResult(names []string, rows [][]string) *pgResult {
	return &pgResult{fixed: &fixedRows{names: names, rows: rows}}
}

// onRelease adds f to what release does.
func (r *pgResult) onRelease(f func()) {
	if prev := r.cancel; prev != nil {
		r.cancel = func() { prev(); f() }
	} else {
		r.cancel = f
	}
}

func (r *pgResult) release() {
	if r.rows != nil {
		r.rows.Stats.Rows = r.sent
		r.rows.Release()
	}
	if r.cancel != nil {
		r.cancel()
	}
}

// describe sends the RowDescription of a result (NoData for a tag only).
func (r *pgResult) describe(be *pgproto3.Backend, formats []int16) {
	switch {
	case r.copy != nil:
		be.Send(&pgproto3.NoData{}) // as PostgreSQL describes a COPY
	case r.fixed != nil:
		fields := make([]pgproto3.FieldDescription, len(r.fixed.names))
		for i, n := range r.fixed.names {
			fields[i] = pgproto3.FieldDescription{Name: []byte(n), DataTypeOID: oidText, DataTypeSize: -1, TypeModifier: -1}
		}
		be.Send(&pgproto3.RowDescription{Fields: fields})
	case r.rows != nil:
		be.Send(rowDescription(withNames(r.rows.Schema(), r.rows.PGNames), formats))
	default:
		be.Send(&pgproto3.NoData{})
	}
}

func rowDescription(s *arrow.Schema, formats []int16) *pgproto3.RowDescription {
	fields := make([]pgproto3.FieldDescription, s.NumFields())
	for i, f := range s.Fields() {
		c := pgColumnFor(f.Type)
		fields[i] = pgproto3.FieldDescription{Name: []byte(f.Name), DataTypeOID: c.oid, DataTypeSize: c.size,
			TypeModifier: -1, Format: formatOf(formats, i, c)}
	}
	return &pgproto3.RowDescription{Fields: fields}
}

// formatOf is the format code of column i: the client's choice, or text
// where there is no binary encoding.
func formatOf(formats []int16, i int, c pgColumn) int16 {
	f := int16(0)
	switch len(formats) {
	case 0:
	case 1:
		f = formats[0]
	default:
		if i < len(formats) {
			f = formats[i]
		}
	}
	if f == 1 && c.bin == nil {
		return 0
	}
	return f
}

// sendResult streams a result's rows and its CommandComplete, and
// releases it.
func (sess *pgSession) sendResult(r *pgResult, formats []int16, withDescription bool) error {
	defer r.release()
	if withDescription {
		r.describe(sess.be, formats)
	}
	_, err := sess.sendRows(r, formats, 0)
	return err
}

// sendRows sends up to max rows of r (all if max <= 0), resuming where the
// last call stopped: an Execute with a row limit sends PortalSuspended
// and the next Execute of the portal goes on (suspended is then true).
// After the last row it sends CommandComplete.
func (sess *pgSession) sendRows(r *pgResult, formats []int16, max int32) (suspended bool, err error) {
	if r.copy != nil {
		return false, sess.sendCopy(r) // COPY ignores a row limit, as in PostgreSQL
	}
	room := func() bool { return max <= 0 || r.sent < int64(max)+r.mark }
	r.mark = r.sent
	switch {
	case r.fixed != nil:
		for ; r.row < len(r.fixed.rows); r.row++ {
			if !room() {
				sess.suspend(r)
				return true, nil
			}
			row := r.fixed.rows[r.row]
			vals := make([][]byte, len(row))
			for i, v := range row {
				if v != nullText {
					vals[i] = []byte(v)
				}
			}
			sess.be.Send(&pgproto3.DataRow{Values: vals})
			r.sent++
		}
		sess.complete(r)
		return false, nil
	case r.rows == nil:
		sess.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(r.tag)})
		return false, nil
	}
	fields := r.rows.Schema().Fields()
	cols := make([]pgColumn, len(fields))
	fmts := make([]int16, len(fields))
	for i, f := range fields {
		cols[i] = pgColumnFor(f.Type)
		fmts[i] = formatOf(formats, i, cols[i])
	}
	vals := make([][]byte, len(cols))
	for !r.drained {
		if r.batch == nil || r.row >= int(r.batch.NumRows()) {
			if !r.rows.Next() {
				r.drained = true // a cursor's next FETCH must not read again
				break
			}
			r.batch, r.row = r.rows.RecordBatch(), 0
			if err := checkValueSizes(r.batch); err != nil {
				return false, err
			}
		}
		rec := r.batch
		for ; r.row < int(rec.NumRows()); r.row++ {
			if !room() {
				sess.suspend(r)
				return true, nil
			}
			for c := range cols {
				a := rec.Column(c)
				switch {
				case a.IsNull(r.row):
					vals[c] = nil
				case fmts[c] == 1:
					vals[c] = cols[c].bin(a, r.row)
				default:
					vals[c] = cols[c].text(a, r.row)
				}
			}
			sess.be.Send(&pgproto3.DataRow{Values: vals})
			r.sent++
		}
		// Keep memory flat on large results.
		if err := sess.flush(); err != nil {
			return false, err
		}
	}
	if err := r.rows.Err(); err != nil {
		return false, err
	}
	if n := r.rows.Stats.IngestNodesMissing; n > 0 && (!r.cursor || r.sent > r.mark) {
		// psql shows it (once, not at each FETCH of a drained cursor);
		// the HTTP API has it in its stats.
		sess.be.Send(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: "01000",
			Message: fmt.Sprintf("%d ingest node(s) did not answer: the rows they acknowledged but had not flushed yet are not in this result", n)})
	}
	sess.complete(r)
	return false, nil
}

// suspend ends an Execute that reached its row limit (the portal goes on
// at the next one), or a FETCH that sent the rows it asked for.
func (sess *pgSession) suspend(r *pgResult) {
	if r.fetching {
		sess.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("FETCH " + strconv.FormatInt(r.sent-r.mark, 10))})
		return
	}
	sess.be.Send(&pgproto3.PortalSuspended{})
}

// complete ends a result sent to its last row: SELECT and the rows in all,
// or FETCH and the rows of this fetch.
func (sess *pgSession) complete(r *pgResult) {
	tag := "SELECT " + strconv.FormatInt(r.sent, 10)
	if r.tag != "" { // SHOW
		tag = r.tag
	}
	if r.fetching {
		tag = "FETCH " + strconv.FormatInt(r.sent-r.mark, 10)
	}
	sess.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
}

// longText is the length of SQL text past which parsing it takes DuckDB
// long enough to count as a query (a chain of 10,000 ORs, 50 kB: 0.2 s).
const longText = 16 << 10

// statementWork runs fn — parsing, binding or describing a statement —
// within a query's time limit, stopped by a CancelRequest or the client
// hanging up. Costly work (a describe runs the query's constant
// expressions; a long text takes seconds to parse) also takes a slot of
// the limiter, unless the session holds one already: its messages run one
// at a time, so the session uses one core either way.
func (sess *pgSession) statementWork(costly bool, fn func(ctx context.Context) error) error {
	ctx, cancel := sess.queryContext()
	defer cancel()
	if !costly || sess.heldSlots() > 0 {
		return sess.srv.exec.timed(ctx, fn)
	}
	return sess.srv.exec.bounded(sess.slotWait(ctx), fn)
}

func (sess *pgSession) parse(m *pgproto3.Parse, written string) error {
	if err := checkText(m.Query); err != nil {
		return err
	}
	if err := sess.checkFailedTx(m.Query); err != nil {
		return err
	}
	if _, used := sess.stmts[m.Name]; used && m.Name != "" {
		// The unnamed statement is replaced; a named one must be closed
		// first, as in PostgreSQL.
		return &pgError{code: "42P05", msg: fmt.Sprintf("prepared statement %q already exists", m.Name)}
	}
	n := len(splitStatements(m.Query))
	if n > 1 {
		return &pgError{code: "42601", msg: "cannot insert multiple commands into a prepared statement"}
	}
	st := &pgStatement{sql: m.Query, written: written, paramOIDs: m.ParameterOIDs}
	if n == 1 && !isSessionStatement(m.Query) && !isCopyOut(m.Query) {
		err := sess.statementWork(len(m.Query) > longText, func(ctx context.Context) error {
			oids, err := sess.srv.exec.paramTypes(ctx, m.Query)
			if err != nil && !sess.srv.catalog.isCatalogQuery(ctx, m.Query) {
				return err
			}
			st.inferred = oids
			return nil
		})
		if err != nil {
			return err
		}
	}
	sess.stmts[m.Name] = st
	sess.be.Send(&pgproto3.ParseComplete{})
	return nil
}

// savepoint runs SAVEPOINT, RELEASE or ROLLBACK TO (tag) against the
// transaction's savepoints. Rolling back to one leaves the failed state
// and drops those made after it; releasing one drops it too.
func (sess *pgSession) savepoint(tag, text string) error {
	what := map[string]string{"SAVEPOINT": "SAVEPOINT", "RELEASE": "RELEASE SAVEPOINT", "ROLLBACK": "ROLLBACK TO SAVEPOINT"}[tag]
	if !sess.inTx {
		return &pgError{code: "25P01", msg: what + " can only be used in transaction blocks"}
	}
	m := savepointStatement.FindStringSubmatch(text)
	if m == nil {
		return &pgError{code: "42601", msg: fmt.Sprintf("syntax error: %s takes one savepoint name", what)}
	}
	name := foldName(m[1])
	if tag == "SAVEPOINT" {
		sess.savepoints = append(sess.savepoints, name)
		return nil
	}
	i := len(sess.savepoints) - 1
	for i >= 0 && sess.savepoints[i] != name {
		i--
	}
	if i < 0 {
		return &pgError{code: "3B001", msg: fmt.Sprintf("savepoint %q does not exist", name)}
	}
	if tag == "RELEASE" {
		sess.savepoints = sess.savepoints[:i]
		return nil
	}
	sess.savepoints = sess.savepoints[:i+1]
	sess.txFailed = false // back to the savepoint, in the transaction
	return nil
}

// checkFailedTx refuses, inside a failed transaction, every statement
// but those that end it or roll back to a savepoint.
func (sess *pgSession) checkFailedTx(sql string) error {
	if !sess.inTx || !sess.txFailed || isEmptyQuery(sql) || endsFailedTx.MatchString(sessionText(sql)) {
		return nil
	}
	return &pgError{code: "25P02", msg: "current transaction is aborted, commands ignored until end of transaction block"}
}

// foldName folds a name the client wrote (a savepoint's, a cursor's, a
// setting's) as PostgreSQL does: a quoted one as written, its "" a ",
// another in lower case (ASCII only, as PostgreSQL folds UTF-8 names).
func foldName(s string) string {
	if len(s) >= 2 && s[0] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return asciiLower(s)
}

func isSessionStatement(sql string) bool {
	w := sessionText(sql)
	return ignoredStatement.MatchString(w) || showStatement.MatchString(w) || cursorVerb.MatchString(w)
}

func (sess *pgSession) bind(m *pgproto3.Bind) error {
	st := sess.stmts[m.PreparedStatement]
	if st == nil {
		return &pgError{code: "26000", msg: fmt.Sprintf("prepared statement %q does not exist", m.PreparedStatement)}
	}
	if err := sess.checkFailedTx(st.sql); err != nil {
		return err
	}
	// The portal this replaces goes first: a suspended one holds a slot
	// this Bind may need.
	if old := sess.portals[m.DestinationPortal]; old != nil {
		if old.result != nil && old.result.cursor {
			return &pgError{code: "42P03", msg: fmt.Sprintf("cursor %q already exists", m.DestinationPortal)}
		}
		if old.result != nil {
			old.result.release()
		}
		delete(sess.portals, m.DestinationPortal)
	}
	sql := st.sql
	if want := max(len(st.inferred), len(st.paramOIDs)); st.inferred != nil && len(m.Parameters) != want {
		return &pgError{code: "08P01", msg: fmt.Sprintf("bind message supplies %d parameters, but prepared statement %q requires %d",
			len(m.Parameters), m.PreparedStatement, want)}
	}
	if len(m.Parameters) > 0 {
		values := make([]*string, len(m.Parameters))
		oids := st.paramTypes(len(m.Parameters))
		for i, p := range m.Parameters {
			if p == nil {
				continue
			}
			format := int16(0)
			switch len(m.ParameterFormatCodes) {
			case 1:
				format = m.ParameterFormatCodes[0]
			default:
				if i < len(m.ParameterFormatCodes) {
					format = m.ParameterFormatCodes[i]
				}
			}
			v, err := decodeParam(p, format, oids[i])
			if err != nil {
				return &pgError{code: "22P02", msg: fmt.Sprintf("parameter $%d: %v", i+1, err)}
			}
			if err := checkInteger(v, oids[i]); err != nil {
				return err
			}
			if strings.IndexByte(v, 0) >= 0 { // DuckDB would cut the value there
				return fmt.Errorf("parameter $%d: %w", i+1, ErrNUL)
			}
			if !utf8.ValidString(v) { // it would become U+FFFD; bytea's is \xNN text here
				return &pgError{code: "22021", msg: fmt.Sprintf("parameter $%d: invalid byte sequence for encoding \"UTF8\"", i+1)}
			}
			values[i] = &v
		}
		err := sess.statementWork(len(sql) > longText, func(ctx context.Context) error {
			var err error
			sql, err = sess.srv.exec.bindParams(ctx, sql, values, oids)
			return err
		})
		if err != nil {
			return err
		}
	}
	sess.portals[m.DestinationPortal] = &pgPortal{sql: sql, text: st.sql, written: st.written, formats: m.ResultFormatCodes}
	delete(sess.idleClosed, m.DestinationPortal)
	sess.be.Send(&pgproto3.BindComplete{})
	return nil
}

// bcSuffix splits a date or timestamp written with a trailing BC (in any
// case) into its date and the rest (a time after a space or T).
var bcSuffix = regexp.MustCompile(`(?i)^\s*(\d+-\d+-\d+)(.*?)\s*BC\s*$`)

// decodeParam turns a bound parameter into the text of a SQL literal.
func decodeParam(p []byte, format int16, oid uint32) (string, error) {
	if elem, ok := elemOIDs[oid]; ok {
		return decodeArray(p, format, elem)
	}
	if oid == oidInterval && format == 1 {
		if len(p) != 16 {
			return "", fmt.Errorf("interval: %d bytes, want 16", len(p))
		}
		return fmt.Sprintf("%d months %d days %d microseconds", int32(binary.BigEndian.Uint32(p[12:])),
			int32(binary.BigEndian.Uint32(p[8:])), int64(binary.BigEndian.Uint64(p))), nil
	}
	if oid == oidBytea {
		raw := p
		if format == 0 { // PostgreSQL's hex format: \x0001ff
			if !bytes.HasPrefix(p, []byte(`\x`)) {
				return string(p), nil
			}
			raw = make([]byte, hex.DecodedLen(len(p)-2))
			if _, err := hex.Decode(raw, p[2:]); err != nil {
				return "", fmt.Errorf("bytea: %w", err)
			}
		}
		// DuckDB reads \xNN escapes when the text is cast to BLOB.
		var b strings.Builder
		for _, c := range raw {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
		return b.String(), nil
	}
	if format == 0 {
		if m := bcSuffix.FindStringSubmatch(string(p)); m != nil && (oid == oidDate || oid == oidTimestamp || oid == oidTimestamptz) {
			// PostgreSQL's years BC, as strata writes them; DuckDB reads
			// "0001-12-31 BC" as AD, and wants "(BC)" after the date.
			rest := strings.TrimSpace(m[2])
			if rest != "" && (rest[0] == 'T' || rest[0] == 't') {
				rest = strings.TrimSpace(rest[1:]) // ISO 8601's T between date and time
			}
			if rest != "" {
				rest = " " + rest
			}
			return m[1] + " (BC)" + rest, nil
		}
		return string(p), nil
	}
	switch oid {
	case oidInt8:
		if len(p) == 8 {
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(p)), 10), nil
		}
	case oidInt4:
		if len(p) == 4 {
			return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(p))), 10), nil
		}
	case oidInt2:
		if len(p) == 2 {
			return strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(p))), 10), nil
		}
	case oidFloat8:
		if len(p) == 8 {
			return strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(p)), 'g', -1, 64), nil
		}
	case oidFloat4:
		if len(p) == 4 {
			return strconv.FormatFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(p))), 'g', -1, 32), nil
		}
	case oidDate:
		if len(p) == 4 {
			switch d := int32(binary.BigEndian.Uint32(p)); d {
			case math.MaxInt32:
				return "infinity", nil
			case math.MinInt32:
				return "-infinity", nil
			default:
				return time.UnixMicro(pgEpochMicros).UTC().AddDate(0, 0, int(d)).Format(time.DateOnly), nil
			}
		}
	case oidBool:
		if len(p) == 1 {
			return strconv.FormatBool(p[0] != 0), nil
		}
	case oidTimestamptz, oidTimestamp:
		if len(p) == 8 {
			switch us := int64(binary.BigEndian.Uint64(p)); us {
			case math.MaxInt64:
				return "infinity", nil
			case math.MinInt64:
				return "-infinity", nil
			default:
				return time.UnixMicro(us + pgEpochMicros).UTC().Format(time.RFC3339Nano), nil
			}
		}
	case oidText, oidVarchar, 0:
		return string(p), nil
	}
	return "", fmt.Errorf("binary format of type %d is not supported; send it as text", oid)
}

// decodeArray turns a one-dimensional array parameter into the text of a
// DuckDB list, which casts to a list of the element type: ["a", NULL].
func decodeArray(p []byte, format int16, elem uint32) (string, error) {
	var elems []*string
	var err error
	if format == 1 {
		elems, err = binaryArray(p, elem)
	} else {
		elems, err = textArray(string(p), elem)
	}
	if err != nil {
		return "", fmt.Errorf("array: %w", err)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range elems {
		if i > 0 {
			b.WriteString(", ")
		}
		if e == nil {
			b.WriteString("NULL")
			continue
		}
		b.WriteByte('"')
		for _, c := range []byte(*e) {
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String(), nil
}

// binaryArray reads PostgreSQL's binary array: dimensions, a null flag,
// the element type, each dimension's size and lower bound, then each
// element as a length (-1: NULL) and its binary value.
func binaryArray(p []byte, elem uint32) ([]*string, error) {
	if len(p) < 12 {
		return nil, errors.New("truncated header")
	}
	ndim := int32(binary.BigEndian.Uint32(p))
	if ndim == 0 {
		return nil, nil
	}
	if ndim != 1 {
		return nil, fmt.Errorf("%d dimensions; only one is supported", ndim)
	}
	if len(p) < 20 {
		return nil, errors.New("truncated header")
	}
	if got := binary.BigEndian.Uint32(p[8:]); got != elem {
		return nil, fmt.Errorf("elements of type %d, want %d", got, elem)
	}
	n := int(int32(binary.BigEndian.Uint32(p[12:])))
	if n < 0 || n > len(p) {
		return nil, fmt.Errorf("bad length %d", n)
	}
	p = p[20:]
	out := make([]*string, 0, n)
	for range n {
		if len(p) < 4 {
			return nil, errors.New("truncated element")
		}
		l := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		if l == -1 {
			out = append(out, nil)
			continue
		}
		if l < 0 || int(l) > len(p) {
			return nil, errors.New("truncated element")
		}
		v, err := decodeParam(p[:l], 1, elem)
		if err != nil {
			return nil, err
		}
		out = append(out, &v)
		p = p[l:]
	}
	return out, nil
}

// textArray reads PostgreSQL's text array: {a,"b c",NULL}, with quotes
// and backslash escapes, white space around elements ignored. It reads
// array parameters and the array literals of queries (pgArrayLiterals).
func textArray(s string, elem uint32) ([]*string, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("%q is not an array literal like {a,b}", s)
	}
	body := s[1 : len(s)-1]
	if strings.TrimSpace(body) == "" {
		return nil, nil
	}
	var out []*string
	for i := 0; i < len(body); {
		for i < len(body) && isSpace(body[i]) {
			i++
		}
		var v strings.Builder
		quoted := i < len(body) && body[i] == '"'
		if quoted {
			i++
			for ; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				v.WriteByte(body[i])
			}
			if i >= len(body) {
				return nil, errors.New("unterminated quote")
			}
			i++ // the closing quote
		} else {
			for ; i < len(body) && body[i] != ','; i++ {
				if body[i] == '{' || body[i] == '}' {
					return nil, errors.New("only one dimension is supported")
				}
				if body[i] == '"' {
					return nil, errors.New(`a " inside an element that is not quoted`)
				}
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				v.WriteByte(body[i])
			}
		}
		for i < len(body) && isSpace(body[i]) {
			i++
		}
		if i < len(body) {
			if body[i] != ',' {
				return nil, fmt.Errorf("unexpected %q", body[i])
			}
			i++
		}
		text := v.String()
		if !quoted { // spaces inside quotes are the element's own
			text = strings.TrimRight(text, " \t\n\r\f\v")
		}
		if !quoted && strings.EqualFold(text, "NULL") {
			out = append(out, nil)
			continue
		}
		val, err := decodeParam([]byte(text), 0, elem)
		if err != nil {
			return nil, err
		}
		out = append(out, &val)
	}
	return out, nil
}

func (sess *pgSession) describe(m *pgproto3.Describe) error {
	if m.ObjectType == 'S' {
		st := sess.stmts[m.Name]
		if st == nil {
			return &pgError{code: "26000", msg: fmt.Sprintf("prepared statement %q does not exist", m.Name)}
		}
		oids := st.paramTypes(max(len(st.inferred), len(st.paramOIDs)))
		// Sent with the row description, not before an error.
		params := &pgproto3.ParameterDescription{ParameterOIDs: oids}
		if isEmptyQuery(st.sql) || isSessionStatement(st.sql) || isCopyOut(st.sql) {
			sess.be.Send(params)
			if name, ok := shownSetting(st.sql); ok {
				// Named as running it names it.
				names := []string{showColumn(name)}
				if name == "all" {
					names = []string{"name", "setting", "description"}
				}
				var fields []pgproto3.FieldDescription
				for _, n := range names {
					fields = append(fields, pgproto3.FieldDescription{Name: []byte(n), DataTypeOID: oidText, DataTypeSize: -1, TypeModifier: -1})
				}
				sess.be.Send(&pgproto3.RowDescription{Fields: fields})
			} else {
				sess.be.Send(&pgproto3.NoData{})
			}
			return nil
		}
		ctx, cancel := sess.queryContext()
		defer cancel()
		ctx = sess.slotWait(ctx)
		// A catalog query runs to be described: its parameters bound to
		// samples of their types, as data queries are described.
		text := sess.currentSettings(st.sql)
		if len(oids) > 0 && len(text) <= longText && sess.srv.catalog.isCatalogQuery(ctx, text) {
			if bound, err := sess.srv.exec.bindParams(ctx, text, sampleValues(oids), oids); err == nil {
				text = bound
			}
		}
		if res, ok, err := sess.srv.catalog.answer(ctx, sess.srv.exec.Limiter, text, st.sql); ok {
			if err != nil {
				return err
			}
			sess.be.Send(params)
			res.describe(sess.be, nil)
			res.release()
			return nil
		}
		var schema *arrow.Schema
		err := sess.statementWork(true, func(ctx context.Context) error {
			var err error
			schema, err = sess.srv.exec.describe(ctx, text) // parameters unbound: not a catalog query
			return err
		})
		if err != nil {
			return err
		}
		sess.be.Send(params)
		sess.be.Send(rowDescription(schema, nil))
		return nil
	}
	p := sess.portals[m.Name]
	if p == nil {
		return sess.missingPortal(m.Name)
	}
	if p.result == nil {
		if _, show := shownSetting(p.sql); isEmptyQuery(p.sql) || isSessionStatement(p.sql) && !show {
			// No rows to describe; and a COMMIT or ROLLBACK runs at its
			// Execute, not here.
			sess.be.Send(&pgproto3.NoData{})
			return nil
		}
		res, err := sess.runPortal(p)
		if err != nil {
			return err
		}
		if p.done { // described after it ran: nothing more to read
			res.describe(sess.be, p.formats)
			res.release()
			return nil
		}
		p.result = res
	}
	p.result.describe(sess.be, p.formats)
	return nil
}

func (sess *pgSession) execute(m *pgproto3.Execute) error {
	p := sess.portals[m.Portal]
	if p == nil {
		return sess.missingPortal(m.Portal)
	}
	if err := sess.checkFailedTx(p.sql); err != nil {
		return err
	}
	if p.done {
		// As PostgreSQL: a portal run to completion has no more rows.
		sess.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
		return nil
	}
	if p.result == nil {
		if isEmptyQuery(p.sql) {
			sess.be.Send(&pgproto3.EmptyQueryResponse{})
			return nil
		}
		res, err := sess.runPortal(p)
		if err != nil {
			return err
		}
		p.result = res
	}
	suspended, err := sess.sendRows(p.result, p.formats, int32(m.MaxRows))
	if suspended && err == nil || p.result.cursor && err == nil {
		return nil // the portal stays for the next Execute (a cursor's, for FETCH too)
	}
	// Its result (and query slot) goes now; the portal itself lasts until
	// Close, the next Bind of its name, or the end of the transaction.
	p.result.release()
	p.result = nil
	p.done = true
	return err
}

// splitStatements cuts a Query message at semicolons outside string
// literals, quoted identifiers and comments, dropping empty statements.
func splitStatements(s string) []string {
	b := engine.BlankLiterals(s)
	var out []string
	start := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
			}
		case ';':
			out = appendStatement(out, s[start:i])
			start = i + 1
		}
	}
	return appendStatement(out, s[start:])
}

func appendStatement(out []string, stmt string) []string {
	if isBlank(stmt) {
		return out
	}
	return append(out, strings.TrimSpace(stmt))
}

// isEmptyQuery reports whether a query text holds no statement: nothing
// but space, comments and semicolons.
func isEmptyQuery(s string) bool { return len(splitStatements(s)) == 0 }

// isBlank reports whether a statement holds nothing but space and comments.
func isBlank(s string) bool {
	return strings.TrimSpace(engine.BlankLiterals(s)) == ""
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/devtrack/devtrack/storage"
)

// Error classes and codes (SQLSTATE) that say the server cannot take a
// write now, whatever is written: any write would get them.
var (
	unavailableClasses = map[string]bool{
		"08": true, // connection exception
		"53": true, // insufficient resources: disk full, out of memory, too many connections
		"57": true, // operator intervention: admin/crash shutdown, cannot connect now, query cancelled
		"58": true, // system error: I/O error
		"XX": true, // internal error, data corrupted
	}
	unavailableCodes = map[string]bool{
		"25006": true, // read_only_sql_transaction: a hot standby, or default_transaction_read_only
		"55P03": true, // lock_not_available: lock_timeout
		"40001": true, // serialization_failure
		"40P01": true, // deadlock_detected
		"25P03": true, // idle_in_transaction_session_timeout
		"F0000": true, // config_file_error
	}
)

// classify marks err as storage.ErrUnavailable when it is a failure of the
// server or of the way to it rather than of the records: a server that
// refuses or lost the connection, shuts down, is full, read-only or out of
// memory, a lock or statement timeout, a context that ended (a server that
// does not answer in time). Other errors (a constraint, a value the server
// refuses) are not marked; the caller tells them apart with CheckWrite.
// Either way the message comes back on one line (oneLine), so that the log
// line of a failed write is one line too.
func classify(err error) error {
	if err == nil || errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	err = oneLine(err)
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

func isUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 57014 query_canceled is a statement_timeout or a cancel sent
		// when the context ended: the server did not finish in time.
		return unavailableClasses[pe.Code[:2]] || unavailableCodes[pe.Code]
	}
	var ne net.Error
	var oe *net.OpError
	var ce *pgconn.ConnectError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ce), errors.As(err, &oe), errors.As(err, &ne),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	}
	// pgconn reports a connection lost mid-query, and a pool closed or
	// timed out, with errors of its own that are not exported as types.
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"conn closed", "unexpected EOF", "closed pool", "broken pipe", "connection reset"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// pgCode is the SQLSTATE of err, "" if it is not a server error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Codes the store branches on.
const (
	codeUniqueViolation = "23505"
	codeCheckViolation  = "23514" // also "no partition of relation found for row"
	codeDuplicateTable  = "42P07"
	codeUndefinedTable  = "42P01"
)

// oneLine returns err with its message on one line, and err itself when it
// is one line already. pgconn puts each address it tried to connect to on
// a line of its own ("failed to connect to `user=u database=d`:\n\t<addr>:
// <error>\n\t<addr>: <error>"), which would split a journal line or a log
// field. A line break after a colon becomes a space, any other "; ", as
// cmd/devtrack joins the lines of the errors that reach it. errors.Is and
// errors.As still see err and its causes.
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	msg = colonBreak.ReplaceAllString(strings.TrimSpace(msg), ": ")
	msg = lineBreak.ReplaceAllString(msg, "; ")
	return &oneLineError{msg: msg, err: err}
}

// The line breaks of a message with the white space around them (blank
// lines and indents included): after a colon, and anywhere.
var (
	colonBreak = regexp.MustCompile(`:\s*[\r\n]\s*`)
	lineBreak  = regexp.MustCompile(`\s*[\r\n]\s*`)
)

// oneLineError is an error with its message joined into one line (oneLine).
type oneLineError struct {
	msg string
	err error
}

func (e *oneLineError) Error() string { return e.msg }
func (e *oneLineError) Unwrap() error { return e.err }

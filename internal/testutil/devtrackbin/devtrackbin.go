// Package devtrackbin builds the devtrack binary for tests outside
// cmd/devtrack (the examples) and runs its commands, so that an example is
// checked against devtrack as its users run it.
package devtrackbin

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Build builds cmd/devtrack into a temporary directory of t and returns the
// binary's path.
func Build(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "devtrack")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/devtrack/devtrack/cmd/devtrack").CombinedOutput()
	if err != nil {
		t.Fatalf("build devtrack: %v\n%s", err, out)
	}
	return bin
}

// Run runs a devtrack command to its end and returns its output; a failure
// fails the test.
func Run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("devtrack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Start starts a long-running devtrack command (gateway, worker) whose
// output goes to the test log under name; it is stopped with SIGTERM and
// waited for when the test ends.
func Start(t testing.TB, bin, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	w := logWriter{t, name}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start devtrack %s: %v", strings.Join(args, " "), err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	return cmd
}

// LastLine is the last non-empty line of out (where devtrack prints a new
// token or key).
func LastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// logWriter logs a process's output in the test.
type logWriter struct {
	t    testing.TB
	name string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

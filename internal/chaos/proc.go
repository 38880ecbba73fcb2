package chaos

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is the devtrack binary the cases run; TestMain sets it.
var Binary string

// Proc is a long-running devtrack process (gateway or worker).
type Proc struct {
	Name string
	Log  string // path of its stderr/stdout
	cmd  *exec.Cmd
	done chan struct{}
}

// Wrap says how to start a process: in a network namespace, with a lower fd
// limit, or in a private mount namespace with dir bind-mounted read-only.
// Each wrapper ends in exec, so the process id is devtrack's own and a kill -9
// reaches it.
type Wrap struct {
	NetNS      string
	FDLimit    int
	ReadOnlyAt string
}

func (w Wrap) command(args []string) *exec.Cmd {
	argv := append([]string{Binary}, args...)
	if w.FDLimit > 0 {
		argv = append([]string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, w.FDLimit)}, argv...)
	}
	if w.ReadOnlyAt != "" {
		argv = append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
			`d=$0 && mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" && exec "$@"`, w.ReadOnlyAt}, argv...)
	}
	if w.NetNS != "" {
		argv = append([]string{"ip", "netns", "exec", w.NetNS}, argv...)
	}
	return exec.Command(argv[0], argv[1:]...)
}

// StartProc starts a devtrack process with env and logs to dir/name.log. It
// is killed when the test ends; a failed test gets the tail of its log.
func StartProc(t testing.TB, dir, name string, env []string, w Wrap, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s start %s: devtrack %s\n", name, time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := w.command(args)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (tail):\n%s", name, tail(string(b), 3000))
		}
	})
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the process has exited, and its exit code.
func (p *Proc) Exited() (bool, int) {
	select {
	case <-p.done:
		return true, p.cmd.ProcessState.ExitCode()
	default:
		return false, 0
	}
}

// Term sends SIGTERM and waits up to 30 s; it returns the exit code.
func (p *Proc) Term(t testing.TB) int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30 s of SIGTERM", p.Name)
	}
	return p.cmd.ProcessState.ExitCode()
}

// run runs a command to completion and returns its stdout, failing the test
// with its stderr on a non-zero exit.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

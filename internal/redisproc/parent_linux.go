package redisproc

import (
	"os/exec"
	"syscall"
)

// dieWithParent puts the server in its own process group, so that a Ctrl-C
// in the terminal reaches only the parent, which then stops the server after
// its own orderly shutdown; and it makes the kernel kill the server when the
// parent dies, so a parent killed with SIGKILL leaves no redis-server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

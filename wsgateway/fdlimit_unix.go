//go:build unix

package wsgateway

import "syscall"

// fdLimit is the process's soft RLIMIT_NOFILE, 0 if unknown or unlimited.
func fdLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 0
	}
	return int(l.Cur)
}

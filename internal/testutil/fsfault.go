package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// NeedRoot skips the test unless it runs as root, and fails it instead in
// CI (CI non-empty), where the tests run as root and must not skip a fault.
func NeedRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s needs root, and CI runs as root", what)
	}
	t.Skipf("%s needs root", what)
}

// Tmpfs mounts a tmpfs of size (e.g. "2m") on a new temp dir, for a store
// whose disk a test fills or turns read-only; it is unmounted when the test
// ends.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	NeedRoot(t, "a tmpfs")
	dir := t.TempDir()
	run(t, "mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Fill writes a file into dir until its file system is full and returns the
// file's path; removing it gives the space back.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{64 << 10, 512} { // big writes, then the last crumbs
		buf := make([]byte, size)
		for {
			_, err := f.Write(buf)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return path
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

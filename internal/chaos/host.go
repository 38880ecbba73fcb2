package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/internal/testutil"
)

// NeedRoot skips the test unless it runs as root; in CI it fails instead.
var NeedRoot = testutil.NeedRoot

func sh(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// Partition is two network namespaces made by the test: R runs redis-server,
// W runs a worker; the root namespace (gateway, devices, checks) reaches R
// over one veth pair, W reaches R over another, so each link can be cut
// alone. Addresses are link-local /30s that exist only on these veths.
type Partition struct {
	t        testing.TB
	R, W     string // namespace names
	rootLink string // the root namespace's end of root<->R
	wLink    string // W's end of W<->R
	// RedisForRoot and RedisForW are R's addresses on each pair.
	RedisForRoot, RedisForW string
}

// NewPartition creates the namespaces and links; they are deleted when the
// test ends. Without root it skips (fails in CI).
func NewPartition(t testing.TB) *Partition {
	t.Helper()
	NeedRoot(t, "network partition")
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ip (iproute2) not installed")
		}
		t.Skip("ip (iproute2) not installed")
	}
	tag := fmt.Sprintf("dtc%d", os.Getpid()%1000000)
	net := 100 + os.Getpid()%100 // third octet: two suites at once do not collide (mostly)
	p := &Partition{t: t, R: tag + "r", W: tag + "w", rootLink: tag + "g0", wLink: tag + "w0",
		RedisForRoot: fmt.Sprintf("169.254.%d.1", net), RedisForW: fmt.Sprintf("169.254.%d.5", net)}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", p.R).Run()
		_ = exec.Command("ip", "netns", "del", p.W).Run()
		_ = exec.Command("ip", "link", "del", p.rootLink).Run()
	})
	sh(t, "ip", "netns", "add", p.R)
	sh(t, "ip", "netns", "add", p.W)
	for _, ns := range []string{p.R, p.W} {
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// root <-> R: 169.254.N.2 <-> .1
	sh(t, "ip", "link", "add", p.rootLink, "type", "veth", "peer", "name", tag+"g1", "netns", p.R)
	sh(t, "ip", "addr", "add", fmt.Sprintf("169.254.%d.2/30", net), "dev", p.rootLink)
	sh(t, "ip", "link", "set", p.rootLink, "up")
	sh(t, "ip", "-n", p.R, "addr", "add", p.RedisForRoot+"/30", "dev", tag+"g1")
	sh(t, "ip", "-n", p.R, "link", "set", tag+"g1", "up")
	// W <-> R: 169.254.N.6 <-> .5
	sh(t, "ip", "-n", p.W, "link", "add", p.wLink, "type", "veth", "peer", "name", tag+"w1", "netns", p.R)
	sh(t, "ip", "-n", p.W, "addr", "add", fmt.Sprintf("169.254.%d.6/30", net), "dev", p.wLink)
	sh(t, "ip", "-n", p.W, "link", "set", p.wLink, "up")
	sh(t, "ip", "-n", p.R, "addr", "add", p.RedisForW+"/30", "dev", tag+"w1")
	sh(t, "ip", "-n", p.R, "link", "set", tag+"w1", "up")
	return p
}

// CutRoot takes the root<->R link down (up=false) or brings it back.
func (p *Partition) CutRoot(up bool) { p.set("", p.rootLink, up) }

// CutW takes the W<->R link down (up=false) or brings it back.
func (p *Partition) CutW(up bool) { p.set(p.W, p.wLink, up) }

func (p *Partition) set(ns, link string, up bool) {
	p.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if ns == "" {
		sh(p.t, "ip", "link", "set", link, state)
		return
	}
	sh(p.t, "ip", "-n", ns, "link", "set", link, state)
}

// Tmpfs and Fill: see testutil.
var (
	Tmpfs = testutil.Tmpfs
	Fill  = testutil.Fill
)

// RemountRW makes dir writable again inside the mount namespace of pid
// (a process started with Wrap.ReadOnlyAt), without restarting it.
func RemountRW(t testing.TB, pid int, dir string) {
	t.Helper()
	sh(t, "nsenter", "-t", fmt.Sprint(pid), "-m", "mount", "-o", "remount,bind,rw", dir)
}

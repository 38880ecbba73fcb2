package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil/redistest"
)

// rabbit is a RabbitMQ node of its own, started by a test: its name, ports,
// data, logs, config, Erlang cookie (HOME) and plugins all in a temp dir,
// never the system's node.
type rabbit struct {
	url string
}

// rabbitServer finds the rabbitmq-server script. The Debian package's
// /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user
// (and its HOME, so another cookie); the script it wraps is run directly.
func rabbitServer() (string, error) {
	const debian = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return exec.LookPath("rabbitmq-server")
}

// startRabbit starts a node and stops it when the test ends. Without
// rabbitmq-server the test is skipped, unless DEVTRACK_REQUIRE_RABBITMQ is
// set: then it fails.
func startRabbit(t *testing.T) *rabbit {
	t.Helper()
	bin, err := rabbitServer()
	if err != nil {
		if os.Getenv("DEVTRACK_REQUIRE_RABBITMQ") != "" {
			t.Fatalf("rabbitmq-server not installed and DEVTRACK_REQUIRE_RABBITMQ is set: %v", err)
		}
		t.Skip("rabbitmq-server not installed (apt-get install rabbitmq-server); set DEVTRACK_REQUIRE_RABBITMQ to fail instead")
	}
	dir := t.TempDir()
	port, dist := redistest.FreePort(t), redistest.FreePort(t)
	for dist == port {
		dist = redistest.FreePort(t)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	node := "dt" + hex.EncodeToString(rnd[:]) + "@localhost"
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := write("rabbitmq.conf", "listeners.tcp.default = 127.0.0.1:"+strconv.Itoa(port)+"\n")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"HOME="+dir, // the Erlang cookie
		"RABBITMQ_NODENAME="+node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"RABBITMQ_CONFIG_FILE="+conf,
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"), // absent
		"RABBITMQ_CONF_ENV_FILE="+write("rabbitmq-env.conf", ""),               // not /etc/rabbitmq's
		"RABBITMQ_ENABLED_PLUGINS_FILE="+write("enabled_plugins", "[]."),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbit.pid"),
	)
	out, err := os.Create(filepath.Join(dir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: the script, beam and erl_child_setup are
	// stopped together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		out.Close()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(filepath.Join(dir, "out.log"))
			t.Fatalf("rabbitmq-server exited (%v):\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal(errors.New("rabbitmq-server did not listen within 60 s"))
		}
	}
	t.Logf("RabbitMQ node %s on %s", node, addr)
	return &rabbit{url: "amqp://guest:guest@" + addr + "/"}
}

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/devtrack/devtrack/devclient"
	"github.com/devtrack/devtrack/internal/fleet"
	"github.com/devtrack/devtrack/internal/redisproc"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/worker"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// demoConfig are the flags of devtrack demo.
type demoConfig struct {
	listen  string
	devices int
	rate    float64
	tiles   string
}

// demoGroups are the groups of the demo fleet, each driving around its own
// part of town; the operator user sees the first one only.
var demoGroups = []struct {
	name   string
	center fleet.Point
}{
	{"north", fleet.Point{Lat: 31.2600, Lng: 121.4600}},
	{"south", fleet.Point{Lat: 31.2000, Lng: 121.4850}},
}

func newDemoCmd(g *globals) *cobra.Command {
	var dc demoConfig
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run everything in one process with a simulated fleet, and print the URL and admin credentials",
		Long: `demo starts Redis (a redis-server from PATH, else an embedded one), a SQLite
archive in a temp dir, a gateway, a worker and --devices simulated couriers that
drive around Shanghai and log at several levels. It prints the web UI's URL, the
admin's name, password and API token, and an operator ("north") who sees only
group north. Ctrl-C stops it and removes the temp dir.

--redis and --store, when given, are used instead of the embedded ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dc.devices < 1 || dc.rate <= 0 {
				return usagef("--devices and --rate must be positive")
			}
			if !cmd.Flags().Changed("log-level") && os.Getenv("DEVTRACK_LOG_LEVEL") == "" {
				g.logLevel = "warn" // the demo's own output is the few lines it prints
			}
			return runDemo(cmd, g, dc)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dc.listen, "listen", "127.0.0.1:8080", "address of the web UI, API and device endpoints (port 0: any free port)")
	f.IntVar(&dc.devices, "devices", 200, "simulated devices")
	f.Float64Var(&dc.rate, "rate", 1, "locations per second per simulated device")
	f.StringVar(&dc.tiles, "tiles", wsgateway.DefaultTiles, `map tile URL template; "none" for no tiles (no internet)`)
	return cmd
}

func runDemo(cmd *cobra.Command, g *globals, dc demoConfig) error {
	ctx := cmd.Context()
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	out := cmd.OutOrStdout()

	// Writes to a closed output pipe (devtrack demo | head -5) fail with
	// EPIPE instead of killing the demo with SIGPIPE before it removes its
	// temp dir; the demo runs on without its output.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	dir, err := os.MkdirTemp("", "devtrack-demo-")
	if err != nil {
		return fmt.Errorf("demo temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	ln, err := net.Listen("tcp", dc.listen)
	if err != nil {
		return fmt.Errorf("demo listen %s (try --listen 127.0.0.1:0 for any free port): %w", dc.listen, err)
	}
	defer ln.Close() // Serve closes it too; this covers the early returns

	redisDesc := "--redis " + g.redis
	if !cmd.Flags().Changed("redis") && os.Getenv("DEVTRACK_REDIS") == "" {
		addr, desc, stop, err := startDemoRedis(ctx, dir)
		if err != nil {
			return err
		}
		defer stop()
		g.redis, redisDesc = addr, desc
	}
	if !cmd.Flags().Changed("store") && os.Getenv("DEVTRACK_STORE") == "" {
		g.store = "sqlite://" + filepath.Join(dir, "devtrack.db")
	}
	store, err := g.openStore(ctx, log)
	if err != nil {
		return err
	}
	defer store.Close()
	rdb, err := g.openRedis(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()

	seed, err := seedDemo(ctx, store, dc.devices)
	if err != nil {
		return err
	}
	// No cap on the unauthenticated connections of one address: the
	// simulated fleet dials from loopback all at once at the start, and the
	// user's browser is on loopback too (with the default cap of 64, a login
	// in the first second could be refused).
	gw, err := wsgateway.New(wsgateway.Config{ID: "demo-gateway", Tiles: dc.tiles, StoreHealth: storeOutageCheck(rdb),
		MaxUnauthConnsPerAddr: -1}, rdb, rdb, store, log)
	if err != nil {
		return err
	}
	wk, err := worker.New(worker.Config{ID: "demo-worker"}, rdb, store, log)
	if err != nil {
		return err
	}

	// The gateway and worker stop after the simulated fleet: stopped
	// together, the devices would reconnect to a gateway that is going away
	// and be refused, with a warning each.
	srvCtx, stopServers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServers()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	ready := make(chan string, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errc <- gw.Serve(srvCtx, ln, func(addr net.Addr) { ready <- addr.String() })
	}()
	go func() {
		defer wg.Done()
		errc <- wk.Run(srvCtx)
	}()
	addr := <-ready
	base := "http://" + browsable(addr)

	fleetCtx, stopFleet := context.WithCancel(ctx)
	var fleetWG sync.WaitGroup
	fleetWG.Add(1)
	go func() {
		defer fleetWG.Done()
		driveDemoFleet(fleetCtx, "ws://"+addr+"/ws/device", seed.devices, dc.rate)
	}()

	fmt.Fprintf(out, "url: %s/\nuser: admin\npassword: %s\ntoken: %s\n", base, seed.password, seed.token)
	fmt.Fprintf(out, "operator: north\noperator-password: %s\n", seed.password)
	fmt.Fprintf(out, "devices: %d (groups %s)\nredis: %s\nstore: %s\n", dc.devices, groupNames(), redisDesc, g.store)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	if f, ok := out.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc: // the gateway or worker gave up before Ctrl-C
	}
	stopFleet()
	fleetWG.Wait()
	stopServers()
	wg.Wait()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	fmt.Fprintln(out, "stopped")
	return nil
}

// browsable turns a listen address into one a browser can open.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func groupNames() string {
	names := make([]string, len(demoGroups))
	for i, gr := range demoGroups {
		names[i] = gr.name
	}
	return strings.Join(names, ", ")
}

// startDemoRedis runs a redis-server from PATH in dir, or else an embedded
// Redis (miniredis), and returns its address, a description and a stop func.
func startDemoRedis(ctx context.Context, dir string) (addr, desc string, stop func(), err error) {
	if _, err := exec.LookPath("redis-server"); err == nil {
		port, err := redisproc.FreePort()
		if err != nil {
			return "", "", nil, err
		}
		srv, err := redisproc.Start(ctx, dir, port, "--save", "", "--appendonly", "no")
		if err != nil {
			return "", "", nil, fmt.Errorf("demo redis: %w", err)
		}
		return srv.Addr(), "redis-server on " + srv.Addr(), func() { srv.Signal(syscall.SIGTERM) }, nil
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return "", "", nil, fmt.Errorf("demo embedded redis: %w", err)
	}
	// RESP2: miniredis serves only pub/sub commands on a subscribed
	// connection, which RESP3 would share with everything else.
	return "redis://" + mr.Addr() + "?protocol=2", "embedded (miniredis) on " + mr.Addr() + "; no redis-server in PATH", mr.Close, nil
}

// demoSeed is what seedDemo created.
type demoSeed struct {
	password, token string
	devices         []demoDevice
}

type demoDevice struct {
	id, token string
	center    fleet.Point
}

// seedDemo creates the admin, the operator of the first group and the fleet.
func seedDemo(ctx context.Context, s storage.Store, n int) (demoSeed, error) {
	seed := demoSeed{password: readablePassword(), token: token.New(token.UserPrefix)}
	pw, err := bcrypt.GenerateFromPassword([]byte(seed.password), bcrypt.DefaultCost)
	if err != nil {
		return seed, fmt.Errorf("demo password: %w", err)
	}
	now := time.Now().UnixMilli()
	users := []struct {
		u   storage.User
		tok string
	}{
		{storage.User{Name: "admin", Role: storage.RoleAdmin, CreatedAt: now}, seed.token},
		{storage.User{Name: demoGroups[0].name, Role: storage.RoleOperator, Groups: []string{demoGroups[0].name}, CreatedAt: now}, token.New(token.UserPrefix)},
	}
	// A store of an earlier demo run keeps its archive: its users are made
	// again with this run's password and tokens, its devices get new tokens.
	for _, u := range users {
		_, err := s.AddUser(ctx, u.u, token.Hash(u.tok), pw)
		if errors.Is(err, storage.ErrExists) {
			if err = s.DeleteUser(ctx, u.u.Name); err == nil {
				_, err = s.AddUser(ctx, u.u, token.Hash(u.tok), pw)
			}
		}
		if err != nil {
			return seed, fmt.Errorf("demo user %s: %w", u.u.Name, err)
		}
	}
	for i := range n {
		gr := demoGroups[i%len(demoGroups)]
		d := demoDevice{id: fmt.Sprintf("courier-%03d", i+1), token: token.New(token.DevicePrefix), center: gr.center}
		dev := storage.Device{ID: d.id, Name: fmt.Sprintf("Courier %d (%s)", i+1, gr.name), Group: gr.name, CreatedAt: now}
		if err := addDemoDevice(ctx, s, dev, token.Hash(d.token)); err != nil {
			return seed, fmt.Errorf("demo device %s: %w", d.id, err)
		}
		seed.devices = append(seed.devices, d)
	}
	if err := seedDemoAlerts(ctx, s, now); err != nil {
		return seed, err
	}
	return seed, nil
}

// addDemoDevice registers dev (enrolling it again if an earlier run
// registered it and it was revoked since), or gives it the new token if it
// is still active from an earlier run.
func addDemoDevice(ctx context.Context, s storage.Store, dev storage.Device, tokenHash []byte) error {
	_, _, err := s.EnrolDevice(ctx, dev, tokenHash)
	if errors.Is(err, storage.ErrExists) {
		_, err = s.RotateDeviceToken(ctx, dev.ID, tokenHash)
	}
	return err
}

// readablePassword is 12 random letters and digits without look-alikes.
func readablePassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 12)
	_, _ = io.ReadFull(rand.Reader, b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// driveDemoFleet connects every demo device and drives it until ctx ends.
// The devices answer the commands "ping" and "beep".
func driveDemoFleet(ctx context.Context, wsURL string, devices []demoDevice, rate float64) {
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i, d := range devices {
		c := devclient.New(devclient.Config{URL: wsURL, Token: d.token, OnCommand: demoCommand})
		wg.Add(2)
		go func() {
			defer wg.Done()
			_ = c.Run(ctx)
		}()
		go func() {
			defer wg.Done()
			// Spread the fleet's first reports over the first second.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(i) * time.Second / time.Duration(len(devices))):
			}
			simDevice(ctx, rate, 0, i, d.center, c, &sent)
		}()
	}
	wg.Wait()
}

func demoCommand(c devclient.Command) devclient.CommandResult {
	res := devclient.CommandResult{OK: true}
	switch c.Name {
	case "ping":
		res.Data = []byte(fmt.Sprintf(`{"pong":true,"at":%d}`, time.Now().UnixMilli()))
	case "beep":
		res.Data = []byte(`{"beeped":true}`)
	default:
		res.OK, res.Error = false, fmt.Sprintf("unknown command %q (this demo device knows ping and beep)", c.Name)
	}
	return res
}

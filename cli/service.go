package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/store/model"
)

func serviceCommand(build Build) *cli.Command {
	return &cli.Command{
		Name:  "service",
		Usage: "run and configure a Gofer server node",
		Subcommands: []*cli.Command{
			{
				Name:  "start",
				Usage: "start a server node",
				Description: `Configuration comes from built-in defaults, then the TOML file (--config),
then GOFER_WEB_<SECTION>__<KEY> environment variables (e.g. GOFER_WEB_SERVER__API_ADDR,
GOFER_WEB_CLUSTER__SECRET), then these flags; later sources win.

Dev mode (--dev, or no config file and neither --bootstrap nor --join) runs one
self-bootstrapped node on 127.0.0.1 with authentication OFF. Every other mode
requires tokens: create the first with 'gofer token bootstrap'.

See 'gofer service init-config' for every setting.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML config file", Value: agent.DefaultConfigPath},
					&cli.StringFlag{Name: "node-id", Usage: "raft server id (default: generated and kept in the data dir)"},
					&cli.StringFlag{Name: "data-dir", Usage: "directory for the raft log, snapshots and state"},
					&cli.StringFlag{Name: "api-addr", Usage: "HTTP API listen host:port"},
					&cli.StringFlag{Name: "api-advertise", Usage: "URL peers and clients use for this node's API"},
					&cli.StringFlag{Name: "raft-addr", Usage: "raft listen host:port"},
					&cli.StringFlag{Name: "raft-advertise", Usage: "raft host:port peers dial"},
					&cli.BoolFlag{Name: "bootstrap", Usage: "form a new cluster with this node (first start only)"},
					&cli.StringFlag{Name: "join", Usage: "join an existing cluster through these member API URLs (comma-separated; retried)"},
					&cli.BoolFlag{Name: "dev", Usage: "dev mode: single node on loopback, auth off"},
					&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn or error"},
					&cli.StringFlag{Name: "pprof-addr", Usage: "serve Go's profiler on this host:port (no auth; loopback only)"},
				},
				Action: func(c *cli.Context) error { return serviceStart(c, build) },
			},
			{
				Name:      "check-state",
				Usage:     "verify a state file (used by the server to check uploaded backups in a separate process)",
				ArgsUsage: "FILE",
				Hidden:    true,
				Action: func(c *cli.Context) error {
					if err := args(c, 1); err != nil {
						return err
					}
					return agent.CheckStateFile(c.Args().First())
				},
			},
			rotateKeyCommand(),
			genCertsCommand(),
			serviceExtensionCommand(),
			serviceExtensionImageCommand(build),
			{
				Name:   "init-config",
				Usage:  "print a commented sample configuration file",
				Action: func(c *cli.Context) error { _, err := fmt.Fprint(c.App.Writer, agent.SampleConfig); return err },
			},
		},
	}
}

// loadServerConfig layers defaults, file, environment and flags.
func loadServerConfig(c *cli.Context) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	path := c.String("config")
	fileFound := false
	switch err := agent.LoadFile(&cfg, path); {
	case err == nil:
		fileFound = true
	case errors.Is(err, fs.ErrNotExist):
		if c.IsSet("config") {
			return cfg, fmt.Errorf("config file %s does not exist (see 'gofer service init-config')", path)
		}
	default:
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if err := agent.ApplyEnv(&cfg, os.Environ()); err != nil {
		return cfg, err
	}
	s := &cfg.Server
	for flag, dst := range map[string]*string{
		"node-id": &s.NodeID, "data-dir": &s.DataDir, "api-addr": &s.APIAddr, "api-advertise": &s.APIAdvertise,
		"raft-addr": &s.RaftAddr, "raft-advertise": &s.RaftAdvertise, "log-level": &s.LogLevel, "pprof-addr": &s.PprofAddr,
	} {
		if c.IsSet(flag) {
			*dst = c.String(flag)
		}
	}
	if c.IsSet("bootstrap") {
		s.Bootstrap = c.Bool("bootstrap")
	}
	if c.IsSet("join") {
		s.Join = nil
		for _, u := range strings.Split(c.String("join"), ",") {
			if u = strings.TrimSpace(u); u != "" {
				s.Join = append(s.Join, u)
			}
		}
	}
	if c.IsSet("dev") {
		s.Dev = c.Bool("dev")
	}
	if s.Dev || (!fileFound && !s.Bootstrap && len(s.Join) == 0) {
		cfg = agent.DevConfig(cfg)
	}
	return cfg, nil
}

const devBanner = `
################################################################################
#                                                                              #
#   GOFER IS RUNNING IN DEV MODE                                               #
#                                                                              #
#   Authentication is OFF: anyone who can reach %-30s  #
#   is an admin. It listens on loopback only and keeps its data in:            #
#   %-74s #
#                                                                              #
#   Never use dev mode for real work. See 'gofer service init-config'.         #
#                                                                              #
################################################################################

`

func serviceStart(c *cli.Context, build Build) error {
	cfg, err := loadServerConfig(c)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	logger := agent.NewLogger(cfg.Server)
	if os.Getenv("GOGC") == "" {
		// A server's live heap is small next to the machine (~5 MB under
		// a write load, where it allocates ~100 MB/s); collecting a quarter
		// as often as the default buys throughput for memory it can spare.
		debug.SetGCPercent(400)
	}
	a, err := agent.New(cfg, model.Metadata{Semver: build.Version, Commit: build.Commit}, logger)
	if err != nil {
		return err
	}
	// Only once the node holds its data dir and listens: a start that
	// fails (the data dir in use, the address taken) says only why.
	if cfg.Server.Dev {
		fmt.Fprintf(c.App.ErrWriter, devBanner, cfg.Server.APIAddr, cfg.Server.DataDir)
	}
	if exe, err := os.Executable(); err == nil {
		a.CheckState = agent.SubprocessStateChecker(exe, "service", "check-state")
	}
	stopReload := reloadOnHangup(c.Context, a)
	defer stopReload()
	return a.Run(c.Context)
}

// reloadOnHangup reads the TLS key pair again on each SIGHUP (certificate
// rotation, docs/tls.md) until the returned stop.
func reloadOnHangup(ctx context.Context, a *agent.Agent) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				_ = a.ReloadTLS() // logged by the agent
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

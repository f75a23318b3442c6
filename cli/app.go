// Package cli is the gofer command line. Every command except
// `service start` talks to servers only through package client; `service
// start` hands control to package agent.
package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
)

// Build describes the binary (set by the linker in main).
type Build struct {
	Version string
	Commit  string
}

// fileConfig is ~/.gofer.toml or ~/.config/gofer.toml. Flags and
// environment variables win over it.
type fileConfig struct {
	APIBaseURL   string `toml:"api_base_url"`
	Token        string `toml:"token"`
	Namespace    string `toml:"namespace"`
	OutputFormat string `toml:"output_format"`
	CACert       string `toml:"ca_cert"`
}

// Global flag names.
const (
	flagAPIBaseURL = "api-base-url"
	flagToken      = "token"
	flagNamespace  = "namespace"
	flagOutput     = "output"
	flagStale      = "stale"
	flagIdemKey    = "idempotency-key"
	flagCACert     = "ca-cert"
	flagInsecure   = "insecure-skip-verify"
)

// App builds the gofer command tree.
func App(build Build, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "gofer",
		Usage:                "run short-lived container jobs: a replicated control plane, its CLI and its tools",
		Version:              fmt.Sprintf("%s (%s)", build.Version, build.Commit),
		EnableBashCompletion: true,
		Writer:               stdout,
		ErrWriter:            stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagAPIBaseURL, Aliases: []string{"a"}, EnvVars: []string{"GOFER_API_BASE_URL"},
				Usage: "Gofer API address; a comma-separated list of nodes is tried in turn", Value: "http://127.0.0.1:8080"},
			&cli.StringFlag{Name: flagToken, Aliases: []string{"t"}, EnvVars: []string{"GOFER_TOKEN"}, Usage: "API token"},
			&cli.StringFlag{Name: flagNamespace, Aliases: []string{"n"}, EnvVars: []string{"GOFER_NAMESPACE"}, Usage: "namespace to work in", Value: "default"},
			&cli.StringFlag{Name: flagOutput, Aliases: []string{"o"}, EnvVars: []string{"GOFER_OUTPUT_FORMAT"}, Usage: "output format: plain, json or silent", Value: "plain"},
			&cli.BoolFlag{Name: flagStale, EnvVars: []string{"GOFER_STALE_READS"},
				Usage: "read from whichever node answers, without asking the leader (faster, may miss the newest writes)"},
			&cli.StringFlag{Name: flagIdemKey,
				Usage: "idempotency key for the command's writes (KEY, KEY-2, …; up to 120 visible ASCII characters): run a command whose outcome was unknown again with the key its error named"},
			&cli.StringFlag{Name: flagCACert, EnvVars: []string{"GOFER_CA_CERT"},
				Usage: "PEM file of the CA that signed the nodes' certificates (https nodes; default: the system roots)"},
			&cli.BoolFlag{Name: flagInsecure, EnvVars: []string{"GOFER_INSECURE_SKIP_VERIFY"},
				Usage: "do not verify https nodes' certificates (test clusters only: the token can be read by anyone in between)"},
		},
		Before: applyFileConfig,
		Commands: []*cli.Command{
			namespaceCommand(),
			pipelineCommand(),
			upCommand(),
			runCommand(),
			taskCommand(),
			secretCommand(),
			tokenCommand(),
			roleCommand(),
			extensionCommand(),
			eventCommand(),
			systemCommand(),
			serviceCommand(build),
			serverCommand(),
			debugCommand(),
			versionCommand(build),
		},
	}
	app.ExitErrHandler = func(*cli.Context, error) {}
	app.OnUsageError = onUsageError
	withUsageErrors(app.Commands)
	return app
}

// Run executes the CLI and returns the process exit code. Errors are
// printed as one line; no stack traces.
func Run(build Build, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, build, args, os.Stdout, os.Stderr)
}

// run is Run with its context and output given (tests).
func run(ctx context.Context, build Build, args []string, stdout, stderr io.Writer) int {
	app := App(build, stdout, stderr)
	unknown := &unknownCommand{}
	app.CommandNotFound = unknown.handler
	args = normalizeArgs(app, args)
	sourcesOf(app).args = args
	err := app.RunContext(ctx, args)
	if unknown.name != "" {
		fmt.Fprintln(stderr, "error:", unknown.Error())
		return 2
	}
	if err != nil {
		var exit cli.ExitCoder
		if errors.As(err, &exit) {
			if msg := exit.Error(); msg != "" {
				fmt.Fprintln(stderr, "error:", msg)
			}
			return exit.ExitCode()
		}
		fmt.Fprintln(stderr, "error:", explain(app, err))
		return 1
	}
	return 0
}

// applyFileConfig fills global flags that neither a flag nor an
// environment variable set from the user's config file, and records
// where the address and the token came from (for error hints).
func applyFileConfig(c *cli.Context) error {
	cfg, path, err := loadFileConfig()
	if err != nil {
		return err
	}
	if cfg == nil {
		cfg = &fileConfig{}
	}
	s := sourcesOf(c.App)
	flags := map[string]*cli.StringFlag{}
	for _, f := range c.App.Flags {
		if sf, ok := f.(*cli.StringFlag); ok {
			flags[sf.Name] = sf
		}
	}
	fileSet := func(flag, value string) string {
		if value != "" && !c.IsSet(flag) {
			return path
		}
		return ""
	}
	s.address = settingSource(s.args, flags[flagAPIBaseURL], envAPIBaseURL, fileSet(flagAPIBaseURL, cfg.APIBaseURL))
	s.token = settingSource(s.args, flags[flagToken], envToken, fileSet(flagToken, cfg.Token))
	set := func(flag, value string) error {
		if value == "" || c.IsSet(flag) {
			return nil
		}
		if err := c.Set(flag, value); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	for flag, value := range map[string]string{
		flagAPIBaseURL: cfg.APIBaseURL, flagToken: cfg.Token, flagNamespace: cfg.Namespace, flagOutput: cfg.OutputFormat,
		flagCACert: cfg.CACert,
	} {
		if err := set(flag, value); err != nil {
			return err
		}
	}
	return nil
}

func loadFileConfig() (*fileConfig, string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, "", nil
	}
	for _, path := range []string{filepath.Join(home, ".gofer.toml"), filepath.Join(home, ".config", "gofer.toml")} {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, path, err
		}
		var cfg fileConfig
		md, err := toml.Decode(string(data), &cfg)
		if err != nil {
			return nil, path, fmt.Errorf("%s: %w", path, err)
		}
		if u := md.Undecoded(); len(u) > 0 {
			return nil, path, fmt.Errorf("%s: unknown key %s (known: api_base_url, token, namespace, output_format, ca_cert)", path, u[0])
		}
		return &cfg, path, nil
	}
	return nil, "", nil
}

// maxIdempotencyKeyFlag leaves room for the "-N" of a command's later
// writes within the server's 128 characters.
const maxIdempotencyKeyFlag = 120

// validIdempotencyKey checks --idempotency-key: visible ASCII (an HTTP
// header value; spaces at its ends would be lost) and short enough to be
// numbered.
func validIdempotencyKey(key string) error {
	if len(key) > maxIdempotencyKeyFlag {
		return fmt.Errorf("at most %d characters, got %d", maxIdempotencyKeyFlag, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return fmt.Errorf("only visible ASCII characters (no spaces or control characters), got %q", key)
		}
	}
	return nil
}

// randomKey is a command's base idempotency key when --idempotency-key is
// not given.
func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newClient builds an API client from the global flags. Reads are
// linearizable unless --stale: separate CLI invocations cannot carry a
// min_index between them, and `create` then `list` through a load balancer
// must show what was just created.
//
// A refused connection on every node fails after about 10 s
// (unreachableFor); a node that answers 503 (no leader yet) is retried for
// the client's 30 s, with progress on a terminal's stderr.
func newClient(c *cli.Context) (*client.Client, error) {
	s := sourcesOf(c.App)
	s.command, s.cmdArgs = strings.TrimPrefix(c.Command.HelpName, c.App.Name+" "), c.Args().Slice()
	s.namespace = c.String(flagNamespace)
	opts := []client.Option{
		client.WithToken(c.String(flagToken)),
		client.WithNamespace(c.String(flagNamespace)),
		client.WithRetryFor(retryFor),
		client.WithUnreachableFor(unreachableFor),
		client.WithResumeNotice(resumeNote(c.App.ErrWriter)),
		client.WithAnswerTimeout(answerTimeout),
	}
	if notice := waitProgress(c); notice != nil {
		opts = append(opts, client.WithWaitNotice(notice))
	}
	// Always a base key, random unless given: an unknown outcome's hint
	// names it, and the command run again with it sends every write the
	// key it had the first time (KEY, KEY-2, …), the ones before the
	// failed write included.
	key := c.String(flagIdemKey)
	if err := validIdempotencyKey(key); err != nil {
		return nil, usageError(c, "--%s: %v", flagIdemKey, err)
	}
	if key == "" {
		key = randomKey()
	}
	opts = append(opts, client.WithIdempotencyKey(key))
	tlsCfg, err := client.TLSConfig(c.String(flagCACert), c.Bool(flagInsecure))
	if err != nil {
		return nil, usageError(c, "--%s: %v", flagCACert, err)
	}
	if tlsCfg.InsecureSkipVerify {
		fmt.Fprintln(c.App.ErrWriter, "warning: --insecure-skip-verify: node certificates are not verified; anyone in between can read the token")
	}
	opts = append(opts, client.WithTLS(tlsCfg))
	cl, err := client.New([]string{c.String(flagAPIBaseURL)}, opts...)
	if err != nil || c.Bool(flagStale) {
		return cl, err
	}
	return cl.Consistent(), nil
}

// cliTLS is --ca-cert/--insecure-skip-verify as a client TLS
// configuration; an unreadable CA file leaves verification against the
// system roots (newClient reports the error).
func cliTLS(c *cli.Context) *tls.Config {
	cfg, err := client.TLSConfig(c.String(flagCACert), c.Bool(flagInsecure))
	if err != nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return cfg
}

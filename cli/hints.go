package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
)

// The error hints: a failed command says what the user can do about it —
// where the CLI took the server address or the token from and how to set
// them, or, for a write whose outcome is unknown, how to check and how to
// retry it safely. Every hint stays on the one error line.

// metaSources is the cli.App.Metadata key of the *settingSources.
const metaSources = "gofer.sources"

// Environment variables of the settings the hints name.
const (
	envAPIBaseURL = "GOFER_API_BASE_URL"
	envToken      = "GOFER_TOKEN"
)

// unreachableFor is how long the CLI keeps trying when no node accepts a
// connection at all, hanging dials included: long enough for a node that
// is restarting (its API listens only once raft is set up, which can take
// several seconds on a large state), short enough that a server that is
// not running or a wrong address is reported after seconds, not after the
// 30 s a leader election may take.
const unreachableFor = 10 * time.Second

// answerTimeout is how long one attempt waits for an answer once its
// request was sent: above every wait the server itself bounds for a route
// the CLI calls (api.RouteInfo.AnswerWithin: up to 95 s for a
// subscription write that waits for an unsubscribe and an extension's
// call; TestAnswerTimeoutAboveServerBounds), so it only fires for a node
// that froze with its connections open. The attempt is then tried again,
// on the next node first, with the same idempotency key. Snapshot save and
// restore are exempt: the server works on them for up to 10 minutes.
const answerTimeout = 120 * time.Second

// retryFor is how long a call keeps retrying nodes that answer but cannot
// serve it yet (503 during a leader election); a variable for tests.
var retryFor = 30 * time.Second

// settingSources records where the global settings came from, and what
// the command was, for the hints.
type settingSources struct {
	// args is the command line as given (after reordering).
	args []string
	// address and token name where each came from: a flag ("--token"),
	// an environment variable, a config file's path, or "" (the default,
	// or no token at all).
	address, token string
	// command and cmdArgs are the command that called the API, namespace
	// the namespace it worked in.
	command   string
	cmdArgs   []string
	namespace string
}

func sourcesOf(app *cli.App) *settingSources {
	if s, ok := app.Metadata[metaSources].(*settingSources); ok {
		return s
	}
	s := &settingSources{}
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata[metaSources] = s
	return s
}

// settingSource names where a global flag's value came from. fromFile is
// the config file that set it, if one did.
func settingSource(args []string, flag *cli.StringFlag, env, fromFile string) string {
	if fromFile != "" {
		return fromFile
	}
	names := append([]string{flag.Name}, flag.Aliases...)
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _ := flagName(a)
		for _, n := range names {
			if name == n {
				return "--" + flag.Name
			}
		}
	}
	if os.Getenv(env) != "" {
		return env
	}
	return ""
}

// configFiles are the config files the CLI reads, as the hints name them.
const configFiles = "~/.gofer.toml, ~/.config/gofer.toml"

const setToken = `set one with --token, GOFER_TOKEN or token = "…" in ~/.gofer.toml`

// explain is the error line for err (without "error: ").
func explain(app *cli.App, err error) string {
	s := sourcesOf(app)
	msg := err.Error()
	var call *client.CallError
	if errors.As(err, &call) {
		switch {
		case call.Unreachable:
			from := s.address
			if from == "" {
				from = "default"
			}
			return fmt.Sprintf("%s. Is the server running? Set the address with --api-base-url or %s (now: %s)", msg, envAPIBaseURL, from)
		case call.Unknown && notDeduplicated[s.command] != "":
			return fmt.Sprintf("%s. Check with %s before you run it again: the server does not deduplicate it (--idempotency-key would not help)",
				msg, notDeduplicated[s.command])
		case call.Unknown:
			// The base key, not the failed write's own: the command's
			// writes before it must get their keys again too.
			key := cmp.Or(call.BaseKey, call.IdempotencyKey)
			return fmt.Sprintf("%s. Check with %s, or run the same command again with --idempotency-key %s: "+
				"the server then answers with the first outcome instead of applying it twice", msg, s.checkHint(), key)
		}
	}
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || !apiErr.FromAPI {
		return msg
	}
	switch apiErr.Status {
	case http.StatusUnauthorized:
		if s.token == "" {
			return fmt.Sprintf("%s (401): no token was found (looked at --token, %s, %s); %s", msg, envToken, configFiles, setToken)
		}
		return fmt.Sprintf("%s (401). The CLI used the token from %s; %s", msg, s.token, setToken)
	case http.StatusForbidden:
		if s.token == "" {
			return fmt.Sprintf("%s (403): no token was found (looked at --token, %s, %s); %s", msg, envToken, configFiles, setToken)
		}
		return fmt.Sprintf("%s (403). The CLI used the token from %s; 'gofer token whoami' shows its user and roles", msg, s.token)
	}
	return msg
}

// checkHints are the commands that show whether a create or start took
// effect, by the command that made it; %[n]s is its nth argument.
var checkHints = map[string]string{
	"namespace create":     "gofer namespace get %[1]s",
	"run start":            "gofer run list %[1]s",
	"pipeline run":         "gofer run list %[1]s",
	"run retry":            "gofer run list %[1]s",
	"token create":         "gofer token list",
	"role create":          "gofer role get %[1]s",
	"secret pipeline put":  "gofer secret pipeline get %[1]s %[2]s",
	"secret global put":    "gofer secret global get %[1]s",
	"pipeline object put":  "gofer pipeline object list %[1]s",
	"run object put":       "gofer run object list %[1]s %[2]s",
	"extension install":    "gofer extension get %[1]s",
	"pipeline subscribe":   "gofer pipeline subscription get %[1]s %[2]s %[3]s",
	"pipeline unsubscribe": "gofer pipeline subscription list %[1]s",
}

// notDeduplicated are the commands whose writes never reach the FSM with
// their idempotency key (a raft snapshot restore, a membership change), so
// the server cannot answer a repeat with the first outcome: their unknown
// outcome is to be checked, not repeated with the key. Each names how.
var notDeduplicated = map[string]string{
	"server snapshot restore": "'gofer server members' and a read of what the backup holds (e.g. 'gofer pipeline list'); running it again restores the backup again, discarding writes made since",
	"server remove":           "'gofer server members'",
	"server join":             "'gofer server members'",
}

// checkHint is the command to check the outcome of the current one.
func (s *settingSources) checkHint() string {
	format, ok := checkHints[s.command]
	if !ok || strings.Count(format, "%[") > len(s.cmdArgs) {
		return "the matching 'get' or 'list' command"
	}
	args := make([]any, len(s.cmdArgs))
	for i, a := range s.cmdArgs {
		args[i] = a
	}
	check := fmt.Sprintf(format, args...)
	if s.namespace != "" && s.namespace != "default" && !strings.HasPrefix(s.command, "namespace ") &&
		!strings.HasPrefix(s.command, "token ") && !strings.HasPrefix(s.command, "role ") {
		check += " -n " + s.namespace
	}
	return "'" + check + "'"
}

// stderrIsTerminal reports whether w is an interactive terminal (not
// /dev/null, a character device too); a variable so tests can pretend.
var stderrIsTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progressEvery is how often a long wait prints another progress line.
const progressEvery = 5 * time.Second

// waitProgress returns the client's notice for long waits (a leader
// election): a line on stderr after 2 s and then every 5 s, on a terminal
// only — stdout stays the command's output (-o json stays JSON), and
// scripts and logs that capture stderr get only the final error line.
// Nothing with -o silent.
func waitProgress(c *cli.Context) client.WaitNotice {
	w := c.App.ErrWriter
	if c.String(flagOutput) == "silent" || !stderrIsTerminal(w) {
		return nil
	}
	var (
		mu   sync.Mutex
		last time.Duration
	)
	return func(reason string, waited time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if last > 0 && waited-last < progressEvery {
			return
		}
		last = waited
		fmt.Fprintf(w, "gofer: waiting for %s… (%d s)\n", reason, int(waited.Round(time.Second)/time.Second))
	}
}

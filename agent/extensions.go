package agent

import (
	"context"
	"io"
	"net"
	"net/url"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/supervisor"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// ExtensionDirectory is where this node's supervisor (when it leads)
// records each running extension's address and secret; extension calls
// (agent/extcall) look extensions up there.
func (a *Agent) ExtensionDirectory() *extcall.Directory { return a.extensions }

// newBuiltin describes the built-in extensions' images: the running
// binary (supervisor.ExecutablePath), tagged with its version.
func newBuiltin(meta model.Metadata, logger hclog.Logger) *supervisor.Builtin {
	path, err := supervisor.ExecutablePath()
	if err != nil {
		logger.Warn("cannot locate the gofer binary; built-in extension images cannot be made", "error", err)
	}
	return &supervisor.Builtin{Version: meta.Semver, Path: path}
}

// newSupervisor builds this term's extension supervisor.
func (a *Agent) newSupervisor(d leadership.Deps) leadership.Service {
	engine, ok := a.sched.(supervisor.Engine)
	if !ok {
		a.logger.Warn("the scheduler cannot run extensions")
		return idleService{}
	}
	var ports supervisor.PortRange
	if a.cfg.Scheduler.Engine == "nomad" {
		// Extensions run on Nomad clients, maybe on other hosts
		// (docs/nomad.md, "Extensions on Nomad"); validated at start.
		ports, _ = a.cfg.Scheduler.Nomad.extensionPorts()
		if a.cfg.Server.ExtensionAddress == "" && isLoopbackHostPort(hostPort(a.cfg.APIURL())) {
			a.logger.Warn("extensions on Nomad get this node's API address as GOFER_HOST, which is loopback: only extensions placed on this host can reach it (set server.api_advertise or server.extension_address)",
				"api", a.cfg.APIURL())
		}
	}
	return supervisor.New(supervisor.Config{
		HostPorts:        ports,
		ClusterID:        a.clusterID(),
		ExtensionAddress: a.cfg.Server.ExtensionAddress,
		Network:          a.cfg.Scheduler.Docker.Network,
		APIHost:          hostPort(a.cfg.APIURL()),
		MemberHosts:      a.memberAPIHosts,
		APITLS:           a.cfg.TLS.Enabled(),
		APICA:            string(a.tls.caPEM),
		LogLevel:         a.cfg.Server.LogLevel,
		StopTimeout:      a.cfg.Extensions.StopTimeout.D(),
		Secrets:          a.secrets,
		Directory:        a.extensions,
		Builtin:          a.builtin,
	}, d, engine)
}

// memberAPIHosts is every member's API host:port.
func (a *Agent) memberAPIHosts() []string {
	var out []string
	for _, u := range a.apiURLs() {
		if h := hostPort(u); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// isLoopbackHostPort tells whether host:port names a loopback address.
func isLoopbackHostPort(hp string) bool {
	h, _, err := net.SplitHostPort(hp)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// hostPort is the host:port of an API URL ("" if it has none).
func hostPort(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		return net.JoinHostPort(u.Hostname(), port)
	}
	return u.Host
}

// extensionLogs opens an extension container's output from this node's
// engine, by its deterministic name (GET /api/extensions/{id}/logs).
func (a *Agent) extensionLogs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	return a.sched.Logs(ctx, supervisor.ContainerName(a.clusterID(), id), follow)
}

// installStdExtensions installs interval and cron on the cluster's first
// establish (extensions.install_std_extensions): one command that also
// marks the cluster, so no later leader does it again, and that skips an
// id the operator took first. A failure is logged, not fatal: the next
// establish tries again.
func (a *Agent) installStdExtensions(ctx context.Context) {
	if !a.cfg.Extensions.InstallStdExtensions {
		return
	}
	var done bool
	_ = a.fsm.View(func(tx *bbolt.Tx) error {
		done = store.StdExtensionsInstalled(tx)
		return nil
	})
	if done {
		return
	}
	var cmd fsm.ExtensionStdInstall
	for _, ext := range supervisor.StdExtensions(a.meta.Semver) {
		in, _, err := a.api.NewExtensionInstall(ext)
		if err != nil {
			a.logger.Warn("could not prepare the standard extensions' install", "error", err)
			return
		}
		cmd.Installs = append(cmd.Installs, in)
	}
	res, err := a.applySystem(ctx, fsm.CmdExtensionStdInstall, cmd)
	if err != nil {
		a.logger.Warn("could not install the standard extensions", "error", err)
		return
	}
	if ids, ok := res.Value.([]string); ok && len(ids) > 0 {
		a.logger.Info("installed the standard extensions", "extensions", ids)
	}
}

// idleService does nothing until leadership ends.
type idleService struct{}

func (idleService) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// removeDevExtensions removes this cluster's extension containers when a
// dev-mode node stops. A cluster leaves them running so the next leader
// adopts them; a dev server is the only node, and its containers would
// otherwise outlive it (and its data folder, when that is wiped).
func (a *Agent) removeDevExtensions(ctx context.Context) {
	if !a.cfg.Server.Dev || a.clusterID() == "" {
		return
	}
	list, err := a.sched.List(ctx, map[string]string{scheduler.LabelCluster: a.clusterID(), scheduler.LabelExtension: ""})
	if err != nil {
		a.logger.Warn("could not list extension containers to remove them", "error", err)
		return
	}
	for _, c := range list {
		if err := a.sched.Remove(ctx, c.Name); err != nil {
			a.logger.Warn("could not remove extension container", "container", c.Name, "error", err)
			continue
		}
		a.logger.Info("removed extension container (dev mode)", "container", c.Name)
	}
}

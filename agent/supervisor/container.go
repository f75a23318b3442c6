package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/sdk/go/extension"
	"github.com/goferhq/gofer/store/model"
)

// ContainerPort is where an extension listens on a container network
// (upstream's 0.0.0.0:8082).
const ContainerPort = 8082

// ContainerName is the extension's container: deterministic, so a new
// leader finds (and adopts) the old leader's, and any node sharing the
// engine can read its logs.
func ContainerName(clusterID, extensionID string) string {
	return "gofer." + clusterID + ".extension." + extensionID
}

// Environment variables given to the extension (docs/extensions.md): the
// Go extension SDK's names, so the two sides of the contract cannot drift.
const (
	EnvID          = extension.EnvID
	EnvSecret      = extension.EnvSecret
	EnvUseTLS      = extension.EnvUseTLS
	EnvTLSCert     = extension.EnvTLSCert
	EnvTLSKey      = extension.EnvTLSKey
	EnvLogLevel    = extension.EnvLogLevel
	EnvGoferHost   = extension.EnvGoferHost
	EnvGoferHosts  = extension.EnvGoferHosts
	EnvGoferCA     = extension.EnvGoferCA
	EnvBindAddress = extension.EnvBindAddress
	EnvBindAlt     = extension.EnvBindAddressAlt
)

// placement is where a container listens and how Gofer is reached from
// it, decided before it starts.
type placement struct {
	// Network overrides the scheduler's network ("host" by default).
	Network string
	// Bind is the address the extension listens on.
	Bind string
	// GoferHost is GOFER_HOST; GoferHosts the comma-separated list.
	GoferHost, GoferHosts string
}

// place decides a new container's networking (DESIGN.md, "Networking").
func (s *Supervisor) place(ctx context.Context, id string) (placement, error) {
	hosts := s.goferHosts()
	if s.cfg.HostPorts.Set() {
		port, err := s.hostPort(ctx, id)
		if err != nil {
			return placement{}, err
		}
		host := s.cfg.ExtensionAddress
		if host == "" {
			host = s.cfg.APIHost
		}
		return placement{Network: "host", Bind: net.JoinHostPort("0.0.0.0", strconv.Itoa(port)),
			GoferHost: host, GoferHosts: strings.Join(hosts, ",")}, nil
	}
	if s.cfg.ExtensionAddress != "" {
		return placement{Network: s.cfg.Network, Bind: "0.0.0.0:" + strconv.Itoa(ContainerPort),
			GoferHost: s.cfg.ExtensionAddress, GoferHosts: strings.Join(hosts, ",")}, nil
	}
	port, err := s.cfg.FreePort()
	if err != nil {
		return placement{}, fmt.Errorf("pick a free loopback port: %w", err)
	}
	return placement{Network: "host", Bind: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		GoferHost: s.cfg.APIHost, GoferHosts: strings.Join(hosts, ",")}, nil
}

// ErrNoHostPort: every port of HostPorts is held by another extension.
var ErrNoHostPort = errors.New("no free port left in the extensions' port range")

// hostPort picks the port extension id listens on (HostPorts placement):
// one that no other extension holds, neither in this term's placements
// nor in the address label of a container the engine lists (an earlier
// leader's). The scan starts after the port id had last, so an extension
// that could not bind its port (something outside Gofer holds it on that
// host) tries the next one when it is restarted.
func (s *Supervisor) hostPort(ctx context.Context, id string) (int, error) {
	list, err := s.engine.List(ctx, map[string]string{scheduler.LabelCluster: s.cfg.ClusterID, scheduler.LabelExtension: ""})
	if err != nil {
		return 0, fmt.Errorf("list the extension containers to pick a port: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	held := map[int]bool{}
	for other, port := range s.hostPorts {
		if other != id {
			held[port] = true
		}
	}
	for _, c := range list {
		if c.Labels[scheduler.LabelExtension] == id {
			continue
		}
		if _, p, err := net.SplitHostPort(c.Labels[scheduler.LabelExtensionAddr]); err == nil {
			if port, err := strconv.Atoi(p); err == nil {
				held[port] = true
			}
		}
	}
	r := s.cfg.HostPorts
	size := r.Last - r.First + 1
	start := 0
	if prev, ok := s.hostPorts[id]; ok && prev >= r.First && prev <= r.Last {
		start = prev - r.First + 1
	}
	for i := range size {
		port := r.First + (start+i)%size
		if !held[port] {
			s.hostPorts[id] = port
			return port, nil
		}
	}
	return 0, fmt.Errorf("%w (%d-%d, %d extensions)", ErrNoHostPort, r.First, r.Last, len(held))
}

// releaseHostPort forgets id's port (its extension was uninstalled).
func (s *Supervisor) releaseHostPort(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hostPorts, id)
}

// goferHosts is GOFER_HOSTS: extension_address first when set, then this
// leader, then the other members, without repeats.
func (s *Supervisor) goferHosts() []string {
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	add(s.cfg.ExtensionAddress)
	add(s.cfg.APIHost)
	if s.cfg.MemberHosts != nil {
		for _, h := range s.cfg.MemberHosts() {
			add(h)
		}
	}
	return out
}

// startRequest builds the container of ext, given its token's secret and
// its placement.
func (s *Supervisor) startRequest(ext *model.Extension, secret, registryPass string, p placement) scheduler.StartRequest {
	env := map[string]string{}
	// Install settings first: the system variables win a clash.
	for k, v := range ext.Settings {
		env[k] = v
	}
	level := strings.ToLower(s.cfg.LogLevel)
	if level == "" {
		level = "info"
	}
	for k, v := range map[string]string{
		EnvID: ext.ID, EnvSecret: secret, EnvUseTLS: "false", EnvTLSCert: "", EnvTLSKey: "",
		EnvLogLevel: level, EnvGoferHost: p.GoferHost, EnvGoferHosts: s.hostsVar(p.GoferHosts),
		EnvBindAddress: p.Bind, EnvBindAlt: p.Bind,
	} {
		env[k] = v
	}
	if s.cfg.APITLS && s.cfg.APICA != "" {
		env[EnvGoferCA] = s.cfg.APICA
	}
	req := scheduler.StartRequest{
		Name:  ContainerName(s.cfg.ClusterID, ext.ID),
		Image: ext.Image,
		Env:   env,
		Labels: map[string]string{
			scheduler.LabelCluster:            s.cfg.ClusterID,
			scheduler.LabelExtension:          ext.ID,
			scheduler.LabelExtensionAddr:      p.Bind,
			scheduler.LabelExtensionGoferHost: p.GoferHost,
			scheduler.LabelExtensionToken:     ext.TokenID,
		},
		Network:      p.Network,
		AlwaysPull:   ext.Pull,
		NeverPull:    !ext.Pull,
		RegistryUser: ext.RegistryUser,
		RegistryPass: registryPass,
	}
	return req
}

// hostsVar is GOFER_HOSTS: with a TLS API every host becomes an https
// URL (the SDK takes a scheme); GOFER_HOST stays host:port, as upstream
// images expect.
func (s *Supervisor) hostsVar(hosts string) string {
	if !s.cfg.APITLS || hosts == "" {
		return hosts
	}
	parts := strings.Split(hosts, ",")
	for i, h := range parts {
		parts[i] = "https://" + h
	}
	return strings.Join(parts, ",")
}

// adoptable says whether a container found under the extension's name
// can be kept: it must run, belong to this install (same token) and
// point at a Gofer that is still there (an upstream-built image reads
// only GOFER_HOST and would be stranded pointing at a dead node). why
// explains a refusal, for the log.
func (s *Supervisor) adoptable(st scheduler.Status, ext *model.Extension) (ok bool, why string) {
	switch {
	case st.State != scheduler.StateRunning:
		return false, fmt.Sprintf("container is %s", st.State)
	case st.Labels[scheduler.LabelExtensionToken] != ext.TokenID:
		return false, "container runs an earlier install (another token)"
	case st.Labels[scheduler.LabelExtensionAddr] == "":
		return false, "container has no address label"
	}
	host := st.Labels[scheduler.LabelExtensionGoferHost]
	if s.cfg.ExtensionAddress != "" {
		if host != s.cfg.ExtensionAddress {
			return false, fmt.Sprintf("container was given GOFER_HOST %q, not server.extension_address %q", host, s.cfg.ExtensionAddress)
		}
		return true, ""
	}
	for _, h := range s.goferHosts() {
		if h == host {
			return true, ""
		}
	}
	return false, fmt.Sprintf("container was given GOFER_HOST %q, which is no current member's API", host)
}

// baseURL is where the supervisor reaches a running container.
func baseURL(st scheduler.Status) (string, error) {
	bind := st.Labels[scheduler.LabelExtensionAddr]
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return "", fmt.Errorf("container address label %q: %w", bind, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if st.IPAddress == "" {
			return "", fmt.Errorf("container listens on %s but has no IP address on its network", bind)
		}
		host = st.IPAddress
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// freeLoopbackPort asks the kernel for a free port on 127.0.0.1 (bind :0,
// close). Another process could take it before the extension binds it;
// the extension then fails to start and is restarted on another port.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

package agent

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goferhq/gofer/agent/supervisor"
)

// validate checks [scheduler.nomad] (only when scheduler.engine is
// nomad); each problem names its setting.
func (n NomadConfig) validate(add func(format string, args ...any)) {
	u, err := url.Parse(n.Address)
	switch {
	case n.Address == "":
		add("scheduler.nomad.address is required with scheduler.engine nomad (e.g. http://127.0.0.1:4646)")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix") || (u.Scheme != "unix" && u.Host == ""):
		add("scheduler.nomad.address %q must be an http://, https:// or unix:// URL", n.Address)
	}
	for i, dc := range n.Datacenters {
		if strings.TrimSpace(dc) == "" {
			add("scheduler.nomad.datacenters[%d] is empty", i)
		}
	}
	if strings.ContainsAny(n.Namespace, " /") {
		add("scheduler.nomad.namespace %q is not a namespace name", n.Namespace)
	}
	if n.CPU < 1 {
		add("scheduler.nomad.cpu must be at least 1 (MHz), got %d", n.CPU)
	}
	if n.Memory < 10 {
		add("scheduler.nomad.memory must be at least 10 (MB, Nomad's minimum), got %d", n.Memory)
	}
	if n.StopGrace.D() <= 0 {
		add("scheduler.nomad.stop_grace must be positive")
	}
	if n.PlacementTimeout.D() <= 0 {
		add("scheduler.nomad.placement_timeout must be positive")
	}
	if d := n.LogSettle.D(); d <= 0 || d > time.Minute {
		add("scheduler.nomad.log_settle must be positive and at most 1m, got %s", d)
	}
	if (n.ClientCert == "") != (n.ClientKey == "") {
		add("scheduler.nomad.client_cert and scheduler.nomad.client_key go together")
	}
	for _, f := range []struct{ key, path string }{
		{"scheduler.nomad.ca_cert", n.CACert}, {"scheduler.nomad.client_cert", n.ClientCert}, {"scheduler.nomad.client_key", n.ClientKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			add("%s: %v", f.key, err)
		}
	}
	if _, err := n.extensionPorts(); err != nil {
		add("scheduler.nomad.extension_ports: %v", err)
	}
	tls := n.CACert != "" || n.ClientCert != "" || n.TLSServerName != "" || n.TLSSkipVerify
	if tls && err == nil && u.Scheme == "http" {
		add("scheduler.nomad TLS settings need an https:// address, got %q", n.Address)
	}
}

// extensionPorts parses extension_ports ("first-last", inclusive).
func (n NomadConfig) extensionPorts() (supervisor.PortRange, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(n.ExtensionPorts), "-")
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return supervisor.PortRange{}, fmt.Errorf("%q must be a range of ports first-last, e.g. 19500-19599", n.ExtensionPorts)
	}
	return supervisor.PortRange{First: first, Last: last}, nil
}

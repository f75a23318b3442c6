package supervisor

import (
	"testing"

	"github.com/goferhq/gofer/store/model"
)

// With a TLS API an extension gets https URLs in GOFER_HOSTS and the
// cluster CA; GOFER_HOST stays host:port (upstream's form). Without TLS
// neither changes.
func TestExtensionEnvironmentWithATLSAPI(t *testing.T) {
	ext := &model.Extension{ID: "interval", Image: "ext:1"}
	p := placement{Network: "host", Bind: "127.0.0.1:9000", GoferHost: "10.0.0.1:8080", GoferHosts: "10.0.0.1:8080,10.0.0.2:8080"}

	tlsSup := &Supervisor{cfg: Config{ClusterID: testCluster, APITLS: true, APICA: "-----BEGIN CERTIFICATE-----\n"}}
	env := tlsSup.startRequest(ext, "s", "", p).Env
	for k, want := range map[string]string{
		EnvGoferHost:  "10.0.0.1:8080",
		EnvGoferHosts: "https://10.0.0.1:8080,https://10.0.0.2:8080",
		EnvGoferCA:    "-----BEGIN CERTIFICATE-----\n",
		EnvUseTLS:     "false",
	} {
		if env[k] != want {
			t.Errorf("TLS API: %s = %q, want %q", k, env[k], want)
		}
	}

	plain := &Supervisor{cfg: Config{ClusterID: testCluster}}
	env = plain.startRequest(ext, "s", "", p).Env
	if env[EnvGoferHosts] != p.GoferHosts {
		t.Errorf("plain API: %s = %q", EnvGoferHosts, env[EnvGoferHosts])
	}
	if _, ok := env[EnvGoferCA]; ok {
		t.Errorf("plain API: %s set", EnvGoferCA)
	}
}

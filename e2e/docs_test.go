package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/goferhq/gofer/agent"
)

// docsEncryptionKey stands in for the key docs/cluster.md has the reader
// generate and export (GOFER_WEB_SECRET_STORE__ENCRYPTION_KEY).
const docsEncryptionKey = "docs-walkthrough-key-7c3e1a9f5d2b8046"

// TestDocsExampleNodeConfigsLoadAndFormOneCluster loads the node configs
// of docs/cluster.md with the server's own loader and validator, and checks
// they describe one cluster: one bootstrap node, the others joining it,
// one shared secret, distinct loopback ports, and the HAProxy example
// pointing at their APIs.
func TestDocsExampleNodeConfigsLoadAndFormOneCluster(t *testing.T) {
	paths, err := filepath.Glob("../docs/examples/node*.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfgs := map[string]agent.Config{}
	for _, p := range paths {
		cfg := agent.DefaultConfig()
		if err := agent.LoadFile(&cfg, p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if cfg.Secrets.EncryptionKey != "" {
			t.Errorf("%s holds secret_store.encryption_key; the guide exports it (GOFER_WEB_SECRET_STORE__ENCRYPTION_KEY) so no key is published", p)
		}
		cfg.Secrets.EncryptionKey = docsEncryptionKey // what the guide's export provides
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s does not validate:\n%v", p, err)
		}
		cfgs[strings.TrimSuffix(filepath.Base(p), ".toml")] = cfg
	}
	for _, name := range []string{"node1", "node2", "node3"} {
		if _, ok := cfgs[name]; !ok {
			t.Fatalf("docs/examples/%s.toml is missing (found %v)", name, paths)
		}
	}

	apiURLs := map[string]string{} // API URL -> file
	seen := map[string]string{}    // node id, addresses, data dir -> file
	secret := cfgs["node1"].Cluster.Secret
	for name, cfg := range cfgs {
		s := cfg.Server
		if s.NodeID != name {
			t.Errorf("%s.toml: node_id %q, want %q", name, s.NodeID, name)
		}
		if s.Dev {
			t.Errorf("%s.toml: dev mode turns authentication off; the cluster example must not use it", name)
		}
		if cfg.Cluster.Secret == "" || cfg.Cluster.Secret != secret {
			t.Errorf("%s.toml: cluster.secret %q differs from node1's %q; every node needs the same one", name, cfg.Cluster.Secret, secret)
		}
		for _, v := range []string{"id " + s.NodeID, "dir " + s.DataDir, "addr " + s.APIAddr, "addr " + s.RaftAddr} {
			if other, dup := seen[v]; dup {
				t.Errorf("%s.toml and %s.toml share %s", name, other, v)
			}
			seen[v] = name
		}
		for _, addr := range []string{s.APIAddr, s.RaftAddr, cfg.RaftAdvertise()} {
			if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
				t.Errorf("%s.toml: %q is not a loopback host:port; the example runs on one machine", name, addr)
			}
		}
		apiURLs[cfg.APIURL()] = name
	}

	// node1 forms the cluster; node2 and node3 join it through members'
	// API URLs; any other example node (a spare for `gofer server join`)
	// does neither.
	for name, cfg := range cfgs {
		s := cfg.Server
		switch {
		case name == "node1":
			if !s.Bootstrap || len(s.Join) > 0 {
				t.Errorf("node1.toml must bootstrap and not join (bootstrap=%v join=%v)", s.Bootstrap, s.Join)
			}
		case name == "node2" || name == "node3":
			if s.Bootstrap || len(s.Join) == 0 {
				t.Errorf("%s.toml must join, not bootstrap (bootstrap=%v join=%v)", name, s.Bootstrap, s.Join)
			}
		default:
			if s.Bootstrap || len(s.Join) > 0 {
				t.Errorf("%s.toml is a spare for `gofer server join`: it must neither bootstrap nor join", name)
			}
		}
		for _, j := range s.Join {
			target, ok := apiURLs[strings.TrimRight(j, "/")]
			if !ok || target == name || target > name {
				t.Errorf("%s.toml joins through %q, which is not the API URL of an example node started before it", name, j)
			}
		}
	}

	// The HAProxy example balances over node1..node3's APIs.
	raw, err := os.ReadFile("../docs/examples/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	backends := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+\S+\s+(\S+)`).FindAllStringSubmatch(string(raw), -1) {
		backends["http://"+m[1]] = true
	}
	for _, name := range []string{"node1", "node2", "node3"} {
		cfg := cfgs[name]
		u := cfg.APIURL()
		if !backends[u] {
			t.Errorf("docs/examples/haproxy.cfg has no server line for %s's API %s (servers: %v)", name, u, backends)
		}
	}
	if len(backends) != 3 {
		t.Errorf("docs/examples/haproxy.cfg lists %d servers, want node1..node3's APIs: %v", len(backends), backends)
	}
}

// TestDocsClusterGuideReferencesExistingExamples keeps docs/cluster.md and
// docs/examples/ in step: every example file the guide names exists and is
// used by it, quoted excerpts match their files, and server configs shown
// inline load and validate.
func TestDocsClusterGuideReferencesExistingExamples(t *testing.T) {
	guide, err := os.ReadFile("../docs/cluster.md")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`docs/examples/[A-Za-z0-9_.-]+`).FindAllString(string(guide), -1) {
		named[strings.TrimRight(m, ".")] = true
	}
	for p := range named {
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Errorf("docs/cluster.md names %s: %v", p, err)
		}
	}
	// Excerpts quoted in the guide match the files they come from.
	for _, m := range regexp.MustCompile("(?s)This is `(docs/examples/[^`]+)`:\\s*```[a-z]*\\n(.*?)```").FindAllStringSubmatch(string(guide), -1) {
		file, err := os.ReadFile(filepath.Join("..", m[1]))
		if err != nil {
			t.Errorf("docs/cluster.md quotes %s: %v", m[1], err)
			continue
		}
		if !strings.Contains(string(file), m[2]) {
			t.Errorf("docs/cluster.md quotes %s, but the file does not contain:\n%s", m[1], m[2])
		}
	}
	haproxyCfg, err := os.ReadFile("../docs/examples/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```haproxy\\n(.*?)```").FindAllStringSubmatch(string(guide), -1) {
		for _, line := range strings.Split(m[1], "\n") {
			if line = strings.TrimSpace(line); line != "" && !lbConfigHasLine(string(haproxyCfg), line) {
				t.Errorf("docs/cluster.md shows %q, which docs/examples/haproxy.cfg does not have", line)
			}
		}
	}
	// Server configs shown in the guide (e.g. for real hosts) are valid.
	for _, m := range regexp.MustCompile("(?s)```toml\\n(.*?)```").FindAllStringSubmatch(string(guide), -1) {
		if !strings.Contains(m[1], "[server]") {
			continue // the CLI's ~/.gofer.toml
		}
		cfg := agent.DefaultConfig()
		if err := agent.DecodeTOML(&cfg, []byte(m[1])); err != nil {
			t.Errorf("docs/cluster.md server config does not load: %v\n%s", err, m[1])
			continue
		}
		if cfg.Secrets.EncryptionKey == "" {
			cfg.Secrets.EncryptionKey = docsEncryptionKey // from the environment, as the guide says
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("docs/cluster.md server config does not validate: %v\n%s", err, m[1])
		}
	}

	files, err := filepath.Glob("../docs/examples/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if p := "docs/examples/" + filepath.Base(f); !named[p] {
			t.Errorf("%s is not mentioned in docs/cluster.md", p)
		}
	}
}

// lbConfigHasLine reports whether cfg has a line equal to line once
// leading and trailing blanks are ignored.
func lbConfigHasLine(cfg, line string) bool {
	for _, l := range strings.Split(cfg, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// TestDocsLinksResolve checks every relative link of README.md and
// docs/*.md: the file it names exists and, for a link into a Markdown
// file, the #anchor is one of that file's headings (as GitHub makes
// anchors). The generated references of docs/cli.md and docs/api.md link
// by anchor heavily, and a renamed heading must not leave dead links.
func TestDocsLinksResolve(t *testing.T) {
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, "../README.md")
	anchors := map[string]map[string]bool{} // cleaned path -> anchors
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		anchors[path] = markdownAnchors(string(raw))
		return anchors[path]
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(withoutCode(string(raw)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := filepath.Clean(filepath.Join(filepath.Dir(page), file))
			if file == "" {
				path = filepath.Clean(page)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s, which does not exist", page, target)
				continue
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchorsOf(path)[anchor] {
				t.Errorf("%s links to %s: %s has no heading with anchor #%s", page, target, path, anchor)
			}
		}
	}
}

// TestReadmeIndexesEveryDocsPage keeps README's documentation index
// complete: a page nobody links to from there is a page nobody finds.
func TestReadmeIndexesEveryDocsPage(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		if name := "docs/" + filepath.Base(p); !strings.Contains(string(readme), "]("+name+")") {
			t.Errorf("README.md's documentation index does not link to %s", name)
		}
	}
}

var fencedCode = regexp.MustCompile("(?s)```.*?```")

// withoutCode drops fenced code blocks, whose brackets are not links.
func withoutCode(md string) string { return fencedCode.ReplaceAllString(md, "") }

// markdownAnchors lists the anchors GitHub gives a document's headings:
// lower case, punctuation dropped, spaces as hyphens, a -N suffix for
// repeats.
func markdownAnchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(withoutCode(md), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

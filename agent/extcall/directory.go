// Package extcall is how the leader calls into running extensions
// (docs/extensions.md, "Routes the extension serves"). The supervisor
// (agent/supervisor) records where each running extension answers in a
// Directory; callers look extensions up there and never touch containers.
package extcall

import "sync"

// Target is where a running extension answers and the bearer it expects
// (its GOFER_EXTENSION_SYSTEM_SECRET).
type Target struct {
	// BaseURL is scheme://host:port, without a trailing slash.
	BaseURL string
	Secret  string
}

// Locator finds a running extension; ok is false when this node's
// supervisor does not run it (not installed, not started yet, or this
// node is not the leader).
type Locator interface {
	Target(extensionID string) (t Target, ok bool)
}

// Directory is the leader's map of running extensions. It outlives
// leadership terms: each term's supervisor fills it and clears it when it
// stops, so callers hold one Directory for the node's life. Safe for
// concurrent use.
type Directory struct {
	mu sync.RWMutex
	m  map[string]Target
}

// NewDirectory returns an empty Directory.
func NewDirectory() *Directory { return &Directory{m: map[string]Target{}} }

// Set records that extension id answers at t.
func (d *Directory) Set(id string, t Target) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[id] = t
}

// Delete forgets extension id.
func (d *Directory) Delete(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, id)
}

// Clear forgets every extension (the supervisor stopped).
func (d *Directory) Clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.m)
}

// Target implements Locator.
func (d *Directory) Target(id string) (Target, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok := d.m[id]
	return t, ok
}

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/agent/reconcile"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// running is the container a worker supervises.
type running struct {
	tokenID     string
	containerID string
	base        string
	secret      string
	ready       bool
	failures    int
	// readyAt is when it became ready; stable, that it has been healthy
	// for StableAfter since (the worker reported it Recovered).
	readyAt time.Time
	stable  bool
	// hint is added to the reason the container exited (a built-in image
	// the engine could not make).
	hint string
	// infoTries counts GET /api/info calls until one answered (haveInfo):
	// a failed one is retried at later health checks, a few times.
	infoTries int
	haveInfo  bool
}

// maxInfoTries bounds the info calls made for one container.
const maxInfoTries = 5

// work supervises one extension (the worker of key id) until its
// container fails (Fail: restarted after the key's backoff), the
// extension is uninstalled (its container removed), or ctx ends
// (leadership lost: the container keeps running for the next leader).
func (s *Supervisor) work(ctx context.Context, w *reconcile.Worker, id string) {
	poke := s.pokeChannel(id)
	defer s.dropPokeChannel(id)
	defer s.cfg.Directory.Delete(id)
	name := ContainerName(s.cfg.ClusterID, id)
	var cur *running
	timer := s.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		ext, secret, err := s.read(id)
		if err != nil {
			if ext != nil {
				s.fail(ctx, w, ext, model.ExtensionStateUnknown, err.Error())
				return
			}
			s.logger.Warn("could not read extension", "extension", id, "error", err)
			w.Fail()
			return
		}
		if ext == nil {
			s.cfg.Directory.Delete(id)
			s.releaseHostPort(id)
			if err := s.remove(ctx, name, cur); err != nil {
				s.logger.Warn("could not remove an uninstalled extension's container", "extension", id, "error", err)
				w.Fail()
			}
			return
		}
		if cur == nil || cur.tokenID != ext.TokenID {
			if cur != nil {
				// Reinstalled: the old install's container goes.
				s.cfg.Directory.Delete(id)
				if err := s.remove(ctx, name, cur); err != nil {
					s.fail(ctx, w, ext, model.ExtensionStateUnknown, fmt.Sprintf("could not remove the previous install's container: %v", err))
					return
				}
			}
			if cur, err = s.ensure(ctx, ext, secret); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.fail(ctx, w, ext, model.ExtensionStateExited, err.Error())
				return
			}
			if cur.ready {
				s.cfg.Directory.Set(id, extcall.Target{BaseURL: cur.base, Secret: cur.secret})
			} else {
				s.record(ctx, ext, model.ExtensionRuntime{State: model.ExtensionStateProcessing})
			}
		}
		if done := s.check(ctx, w, ext, cur); done {
			return
		}
		timer.Stop()
		timer.Reset(s.cfg.HealthInterval)
		select {
		case <-ctx.Done():
			return
		case <-poke:
		case <-timer.C():
		}
	}
}

// check inspects the container and its health once. It reports done when
// the worker must end (the container failed and was removed).
func (s *Supervisor) check(ctx context.Context, w *reconcile.Worker, ext *model.Extension, cur *running) (done bool) {
	name := ContainerName(s.cfg.ClusterID, ext.ID)
	st, err := s.engine.Inspect(ctx, name)
	if err != nil {
		// The engine did not answer: nothing can be concluded.
		if ctx.Err() == nil {
			s.logger.Warn("could not inspect extension container", "extension", ext.ID, "error", err)
		}
		return false
	}
	if cur.containerID == "" {
		// Placed after ensure returned (Nomad): its id is known now.
		cur.containerID = st.ID
	}
	if st.State == scheduler.StateCreated && !cur.ready && (st.ID == "" || st.ID == cur.containerID) {
		// Not started yet (Nomad places it and pulls its image on its
		// own): a startup check that did not pass.
		return s.startupFailed(ctx, w, ext, cur, fmt.Errorf("the container has not started: %s", orDefault(st.Message, "created")))
	}
	if st.State != scheduler.StateRunning || (st.ID != "" && st.ID != cur.containerID) {
		reason := describeExit(st) + cur.hint
		if st.State == scheduler.StateRunning {
			reason = "the container was replaced behind the supervisor's back"
		}
		s.cfg.Directory.Delete(ext.ID)
		if err := s.engine.Remove(ctx, name); err != nil && ctx.Err() == nil {
			s.logger.Warn("could not remove extension container", "extension", ext.ID, "error", err)
		}
		s.fail(ctx, w, ext, model.ExtensionStateExited, reason)
		return true
	}
	if cur.base == "" {
		base, err := baseURL(st)
		if err != nil {
			return s.startupFailed(ctx, w, ext, cur, err)
		}
		cur.base = base
		s.logger.Info("extension container started", "extension", ext.ID, "address", base)
	}
	herr := s.health(ctx, cur.base)
	if ctx.Err() != nil {
		return true
	}
	if herr == nil {
		cur.failures = 0
		if cur.ready && !cur.stable && s.clock.Now().Sub(cur.readyAt) >= s.cfg.StableAfter {
			cur.stable = true
			w.Recovered()
		}
		if !cur.ready || (!cur.haveInfo && cur.infoTries < maxInfoTries && len(ext.Runtime.Documentation) == 0) {
			doc, err := s.info(ctx, cur.base, cur.secret)
			cur.infoTries++
			if err != nil {
				s.logger.Warn("extension is healthy but its info call failed", "extension", ext.ID, "try", cur.infoTries, "error", err)
			} else {
				cur.haveInfo = true
			}
			if !cur.ready {
				cur.ready, cur.readyAt = true, s.clock.Now()
				s.cfg.Directory.Set(ext.ID, extcall.Target{BaseURL: cur.base, Secret: cur.secret})
			}
			s.record(ctx, ext, model.ExtensionRuntime{State: model.ExtensionStateRunning, Started: st.Started.UnixMilli(), Documentation: doc})
		}
		return false
	}
	return s.startupFailed(ctx, w, ext, cur, herr)
}

// startupFailed counts a failed check (health, or a container not started
// yet); after StartupChecks before ready, or HealthFailures in a row
// after, the container is removed and the extension failed (done).
func (s *Supervisor) startupFailed(ctx context.Context, w *reconcile.Worker, ext *model.Extension, cur *running, herr error) (done bool) {
	name := ContainerName(s.cfg.ClusterID, ext.ID)
	cur.failures++
	limit := s.cfg.HealthFailures
	if !cur.ready {
		limit = s.cfg.StartupChecks
	}
	if cur.failures < limit {
		return false
	}
	reason := fmt.Sprintf("%d health checks in a row failed (last: %v); restarting", cur.failures, herr)
	if !cur.ready {
		reason = fmt.Sprintf("not healthy after %d checks (last: %v)%s; restarting", cur.failures, herr, cur.hint)
	}
	s.cfg.Directory.Delete(ext.ID)
	if err := s.remove(ctx, name, nil); err != nil && ctx.Err() == nil {
		// The next worker's ensure replaces whatever is left.
		s.logger.Warn("could not remove an unhealthy extension's container", "extension", ext.ID, "error", err)
	}
	s.fail(ctx, w, ext, model.ExtensionStateExited, reason)
	return true
}

// fail records why the extension is not running and holds its key back.
func (s *Supervisor) fail(ctx context.Context, w *reconcile.Worker, ext *model.Extension, state, reason string) {
	s.logger.Warn("extension failed; it is restarted after a backoff", "extension", ext.ID, "reason", reason)
	s.record(ctx, ext, model.ExtensionRuntime{State: state, Reason: reason})
	w.Fail()
}

// ensure adopts the extension's container if it can, or (re)places it.
func (s *Supervisor) ensure(ctx context.Context, ext *model.Extension, secret string) (*running, error) {
	name := ContainerName(s.cfg.ClusterID, ext.ID)
	st, err := s.engine.Inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	if st.State != scheduler.StateNotFound {
		ok, why := s.adoptable(st, ext)
		if ok {
			base, err := baseURL(st)
			if err == nil {
				s.logger.Info("adopted running extension container", "extension", ext.ID, "container", name)
				cur := &running{tokenID: ext.TokenID, containerID: st.ID, base: base, secret: secret}
				// An adopted extension that answers is ready at once: no
				// state change, so nothing is written.
				if s.health(ctx, base) == nil && ext.Runtime.State == model.ExtensionStateRunning {
					cur.ready, cur.readyAt = true, s.clock.Now()
				}
				return cur, nil
			}
			why = err.Error()
		}
		s.logger.Info("replacing extension container", "extension", ext.ID, "container", name, "why", why)
		if st.State == scheduler.StateRunning {
			if err := s.engine.Stop(ctx, name, s.cfg.StopTimeout); err != nil {
				return nil, err
			}
		}
		if err := s.engine.Remove(ctx, name); err != nil {
			return nil, err
		}
	}
	asNamed, err := s.cfg.Builtin.ensure(ctx, s.engine, ext.Image)
	if err != nil {
		return nil, err
	}
	var hint string
	if asNamed {
		hint = fmt.Sprintf(" (the engine cannot make built-in images: %s must be on every host it may run on, made there with `gofer service extension-image --tag %s %s`)",
			ext.Image, imageTagOf(ext.Image), kindOf(s.cfg.Builtin, ext.Image))
	}
	p, err := s.place(ctx, ext.ID)
	if err != nil {
		return nil, err
	}
	var registryPass string
	if len(ext.RegistryPassSealed) > 0 {
		pass, err := s.cfg.Secrets.Open(ext.RegistryPassSealed, seal.ExtensionRegistryLocation(ext.ID))
		if err != nil {
			return nil, fmt.Errorf("open the registry password: %w", err)
		}
		registryPass = string(pass)
	}
	if err := s.engine.Start(ctx, s.startRequest(ext, secret, registryPass, p)); err != nil {
		if errors.Is(err, scheduler.ErrImageNotFound) && !ext.Pull {
			return nil, fmt.Errorf("image %s is not present on the container engine and the install does not allow pulling it (install with pull: true, or load the image): %w", ext.Image, err)
		}
		return nil, err
	}
	st, err = s.engine.Inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	cur := &running{tokenID: ext.TokenID, containerID: st.ID, secret: secret, hint: hint}
	if st.State != scheduler.StateRunning {
		// Not started yet (Nomad places it on its own): check learns
		// its address once it runs, or counts the startup checks.
		s.logger.Info("extension container submitted, not started yet", "extension", ext.ID, "container", name, "image", ext.Image, "state", st.State)
		return cur, nil
	}
	if cur.base, err = baseURL(st); err != nil {
		return nil, err
	}
	s.logger.Info("started extension container", "extension", ext.ID, "container", name, "image", ext.Image, "address", cur.base)
	return cur, nil
}

// imageTagOf is the tag of an image reference ("" without one).
func imageTagOf(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return ""
}

// kindOf is the built-in kind of image.
func kindOf(b *Builtin, image string) string {
	k, _ := b.kind(image)
	return k
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// remove stops and removes the extension's container, asking the
// extension to shut down first when this worker knows how to reach it.
func (s *Supervisor) remove(ctx context.Context, name string, cur *running) error {
	if cur != nil && cur.ready {
		if err := s.shutdown(ctx, cur.base, cur.secret); err != nil {
			s.logger.Debug("extension shutdown call failed; stopping it anyway", "container", name, "error", err)
		}
	}
	if err := s.engine.Stop(ctx, name, s.cfg.StopTimeout); err != nil {
		return err
	}
	return s.engine.Remove(ctx, name)
}

// read returns the extension's record and its token's secret; nil when
// the extension is not installed.
func (s *Supervisor) read(id string) (*model.Extension, string, error) {
	var ext *model.Extension
	var tok *model.StoredToken
	if err := s.state.View(func(tx *bbolt.Tx) (err error) {
		if ext, err = store.GetExtension(tx, id); err != nil || ext == nil {
			return err
		}
		tok, err = store.GetToken(tx, ext.TokenID)
		return err
	}); err != nil || ext == nil {
		return nil, "", err
	}
	if tok == nil || len(tok.Sealed) == 0 {
		return ext, "", fmt.Errorf("extension %s: its token %s has no sealed secret to give the container", id, ext.TokenID)
	}
	secret, err := s.cfg.Secrets.Open(tok.Sealed, seal.RunTokenLocation(tok.ID))
	if err != nil {
		return ext, "", fmt.Errorf("extension %s: open its token's secret: %w", id, err)
	}
	return ext, string(secret), nil
}

// describeExit explains a container that is not running.
func describeExit(st scheduler.Status) string {
	switch st.State {
	case scheduler.StateNotFound:
		return "the container is gone"
	case scheduler.StateExited:
		msg := fmt.Sprintf("the container exited with code %d", st.ExitCode)
		if st.Message != "" {
			msg += ": " + st.Message
		}
		return msg
	}
	msg := fmt.Sprintf("the container is %s", st.State)
	if st.Message != "" {
		msg += ": " + st.Message
	}
	return msg
}

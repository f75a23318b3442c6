package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The three calls the supervisor itself makes on an extension (every
// other call is agent/extcall's). Each has its own short timeout.
const (
	healthTimeout   = 2 * time.Second
	infoTimeout     = 5 * time.Second
	shutdownTimeout = 5 * time.Second
	maxInfoBytes    = 64 << 10
)

// health is GET /api/health (no auth): any 2xx is ready (upstream: 204).
func (s *Supervisor) health(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	resp, err := s.call(ctx, http.MethodGet, base+"/api/health", "")
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("health check answered %s", resp.Status)
	}
	return nil
}

// info is GET /api/info: the extension's documentation, as it sent it.
// The JSON may come labelled text/plain (upstream's SDK).
func (s *Supervisor) info(ctx context.Context, base, secret string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	resp, err := s.call(ctx, http.MethodGet, base+"/api/info", secret)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInfoBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("info answered %s: %s", resp.Status, bytes.TrimSpace(body[:min(len(body), 200)]))
	}
	if len(body) > maxInfoBytes {
		return nil, fmt.Errorf("info answer is over %d bytes", maxInfoBytes)
	}
	var out struct {
		Documentation json.RawMessage `json:"documentation"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("info answer is not JSON: %w", err)
	}
	return out.Documentation, nil
}

// shutdown is POST /api/shutdown, best effort: the container is stopped
// after it whatever it answers.
func (s *Supervisor) shutdown(ctx context.Context, base, secret string) error {
	ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	resp, err := s.call(ctx, http.MethodPost, base+"/api/shutdown", secret)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

func (s *Supervisor) call(ctx context.Context, method, url, secret string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	req.Header.Set("gofer-api-version", "v0")
	return s.cfg.HTTP.Do(req)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

package github

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// GitHub's headers.
const (
	HeaderSignature = "X-Hub-Signature-256"
	HeaderDelivery  = "X-GitHub-Delivery"
	HeaderEvent     = "X-GitHub-Event"
)

// KeyPrefix starts the trigger key of a delivery: "github:<delivery id>".
const KeyPrefix = "github:"

// maxDeliveryID bounds the delivery id so the key fits Gofer's 128
// characters (GitHub's are 36-character GUIDs).
const maxDeliveryID = 100

// header looks a header up whatever its case (Gofer forwards them as it
// got them).
func header(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// verify checks the body's HMAC-SHA256 against X-Hub-Signature-256 in
// constant time. It runs before anything reads the body. It returns the
// verified signature (lower-case hex), which identifies the body.
func (e *Extension) verify(headers map[string]string, body []byte) (string, error) {
	sig := header(headers, HeaderSignature)
	if sig == "" {
		return "", extension.Errorf(http.StatusUnauthorized, "unsigned delivery: %s is missing", HeaderSignature)
	}
	hexSum, ok := strings.CutPrefix(sig, "sha256=")
	got, err := hex.DecodeString(hexSum)
	if !ok || err != nil || len(got) != sha256.Size {
		return "", extension.Errorf(http.StatusUnauthorized, "%s is not sha256=<64 hex digits>", HeaderSignature)
	}
	mac := hmac.New(sha256.New, e.secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "", extension.Errorf(http.StatusUnauthorized, "%s does not match the body and the webhook secret", HeaderSignature)
	}
	return hex.EncodeToString(got), nil
}

// ExternalEvent handles one webhook delivery: size, signature and
// delivery id are checked before the body is parsed; a delivery seen
// before is dropped, and so is a body seen before under another delivery
// id (a captured delivery replayed: its signature is remembered too);
// otherwise every matching subscription starts one run with the key
// "github:<delivery id>" (Gofer starts at most one run per key and
// pipeline, also for a redelivery this process has forgotten).
func (e *Extension) ExternalEvent(ctx context.Context, ev extension.Event) error {
	if len(ev.Body) > MaxBody {
		return extension.Errorf(http.StatusRequestEntityTooLarge, "delivery body of %d bytes is over the %d-byte limit", len(ev.Body), MaxBody)
	}
	if len(e.secret) == 0 {
		return extension.Errorf(http.StatusServiceUnavailable, "no webhook secret configured")
	}
	signature, err := e.verify(ev.Headers, ev.Body)
	if err != nil {
		return err
	}
	delivery := header(ev.Headers, HeaderDelivery)
	if delivery == "" || len(delivery) > maxDeliveryID || strings.ContainsAny(delivery, " \t\r\n") {
		return extension.Errorf(http.StatusBadRequest, "%s is missing or malformed", HeaderDelivery)
	}
	event := header(ev.Headers, HeaderEvent)
	e.mu.Lock()
	dup, replay := e.seen.has(delivery), e.signatures.has(signature)
	e.mu.Unlock()
	if dup {
		e.opts.Logger.Info("redelivery dropped", "delivery", delivery)
		return nil
	}
	if replay {
		// The same signed body under a new delivery id: GitHub never
		// sends one body twice with two ids, so this is a replay.
		e.opts.Logger.Warn("replayed delivery dropped: its body was delivered before under another delivery id", "delivery", delivery, "event", event)
		return nil
	}
	if event == "ping" {
		return nil
	}
	var p payload
	if err := json.Unmarshal(ev.Body, &p); err != nil {
		return extension.Errorf(http.StatusBadRequest, "delivery body is not JSON: %v", err)
	}
	vars, ok := variables(event, &p)
	if !ok {
		e.opts.Logger.Debug("event not handled", "event", event, "delivery", delivery)
		e.remember(delivery, signature)
		return nil
	}
	e.mu.Lock()
	var targets []schedule.Subscription
	for k, s := range e.subs {
		if s.matches(p.Repository.FullName, event, p.Action) {
			targets = append(targets, k)
		}
	}
	e.mu.Unlock()
	// One run per pipeline: two subscriptions of one pipeline share the
	// key, so the second start answers the first run.
	var errs []error
	var lacking []string
	for _, t := range targets {
		_, err := e.opts.Gofer.StartRun(ctx, t.Namespace, t.Pipeline, vars, KeyPrefix+delivery)
		var apiErr *extension.APIError
		switch {
		case err == nil:
		case errors.As(err, &apiErr) && len(apiErr.Missing) > 0:
			// Secrets or objects the run needs are not there: not final.
			// The delivery is answered 409 and not remembered, so a
			// redelivery after they are stored starts the run.
			e.opts.Logger.Warn("run refused: secrets or objects are not there; store them, then redeliver",
				"delivery", delivery, "subscription", t.String(), "missing", apiErr.MissingSummary(), "error", apiErr.Message)
			lacking = append(lacking, apiErr.Message)
		case refused(err):
			// Final: the pipeline is gone or disabled, the subscription
			// disabled. A redelivery would be refused again, so this
			// target is done.
			e.opts.Logger.Warn("run refused; target skipped", "delivery", delivery, "subscription", t.String(), "error", err)
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Not remembered: GitHub's (or an operator's) redelivery retries,
		// and pipelines already started answer their run.
		return extension.Errorf(http.StatusBadGateway, "starting runs: %v", errors.Join(append(errs, stringErrors(lacking)...)...))
	}
	if len(lacking) > 0 {
		return extension.Errorf(http.StatusConflict, "%s; store them, then redeliver this delivery", strings.Join(lacking, "; "))
	}
	e.remember(delivery, signature)
	return nil
}

func stringErrors(messages []string) []error {
	out := make([]error, len(messages))
	for i, m := range messages {
		out[i] = errors.New(m)
	}
	return out
}

// refused reports whether Gofer answered a final no (a 4xx other than
// 408 and 429), as opposed to being unreachable or busy.
func refused(err error) bool {
	var apiErr *extension.APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 &&
		apiErr.Status != http.StatusRequestTimeout && apiErr.Status != http.StatusTooManyRequests
}

func (e *Extension) remember(delivery, signature string) {
	e.mu.Lock()
	e.seen.add(delivery)
	e.signatures.add(signature)
	e.mu.Unlock()
}

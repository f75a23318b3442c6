package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/goferhq/gofer/store/model"
)

// InstallRequest is the body of an extension install.
type InstallRequest struct {
	ID              string            `json:"id"`
	Image           string            `json:"image"`
	Settings        map[string]string `json:"settings,omitempty"`
	RegistryAuth    *RegistryAuth     `json:"registry_auth,omitempty"`
	AdditionalRoles []string          `json:"additional_roles,omitempty"`
	// Pull lets the supervisor pull the image.
	Pull bool `json:"pull,omitempty"`
}

// RegistryAuth is a registry login for an extension's image.
type RegistryAuth struct {
	User string `json:"user"`
	Pass string `json:"pass"`
}

// Installed is an install's answer: the registration and the extension's
// new token, whose secret is shown only here.
type Installed struct {
	Extension *model.ExtensionView `json:"extension"`
	Token     struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	} `json:"token"`
}

// InstallExtension installs (or reinstalls, rotating its token) an
// extension. Admins only.
func (c *Client) InstallExtension(ctx context.Context, req InstallRequest) (*Installed, error) {
	var out Installed
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/extensions", body: req}, &out)
	return &out, err
}

// ListExtensions lists installed extensions.
func (c *Client) ListExtensions(ctx context.Context, p Page) ([]*model.ExtensionView, error) {
	var out struct {
		Extensions []*model.ExtensionView `json:"extensions"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/extensions", query: p.query()}, &out)
	return out.Extensions, err
}

// GetExtension reads one extension's registration.
func (c *Client) GetExtension(ctx context.Context, id string) (*model.ExtensionView, error) {
	var out struct {
		Extension *model.ExtensionView `json:"extension"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/extensions/" + seg(id)}, &out)
	return out.Extension, err
}

// SetExtensionEnabled enables or disables an extension; a disabled
// extension's token may not start runs.
func (c *Client) SetExtensionEnabled(ctx context.Context, id string, enable bool) (*model.ExtensionView, error) {
	var out struct {
		Extension *model.ExtensionView `json:"extension"`
	}
	_, err := c.do(ctx, request{method: http.MethodPatch, path: "/api/extensions/" + seg(id), body: map[string]bool{"enable": enable}}, &out)
	return out.Extension, err
}

// UninstallExtension removes an extension and every subscription to it.
func (c *Client) UninstallExtension(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/extensions/" + seg(id)}, nil)
	return err
}

// ListExtensionSubscriptions lists the subscriptions to an extension the
// token may read, across namespaces (what an extension restores at boot).
func (c *Client) ListExtensionSubscriptions(ctx context.Context, id string, p Page) ([]*model.Subscription, error) {
	var out struct {
		Subscriptions []*model.Subscription `json:"subscriptions"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/extensions/" + seg(id) + "/subscriptions", query: p.query()}, &out)
	return out.Subscriptions, err
}

func (c *Client) subscriptionPath(pipeline, extension, id string) string {
	return c.pipelinePath(pipeline) + "/subscriptions/" + seg(extension) + "/" + seg(id)
}

// Subscribe subscribes a pipeline to an extension under subscription id.
func (c *Client) Subscribe(ctx context.Context, pipeline, extension, id string, settings map[string]string) (*model.Subscription, error) {
	var out struct {
		Subscription *model.Subscription `json:"subscription"`
	}
	if settings == nil {
		settings = map[string]string{}
	}
	body := map[string]any{"extension_id": extension, "subscription_id": id, "settings": settings}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.pipelinePath(pipeline) + "/subscriptions", body: body}, &out)
	return out.Subscription, err
}

// ListSubscriptions lists a pipeline's subscriptions.
func (c *Client) ListSubscriptions(ctx context.Context, pipeline string, p Page) ([]*model.Subscription, error) {
	var out struct {
		Subscriptions []*model.Subscription `json:"subscriptions"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.pipelinePath(pipeline) + "/subscriptions", query: p.query()}, &out)
	return out.Subscriptions, err
}

// GetSubscription reads one subscription.
func (c *Client) GetSubscription(ctx context.Context, pipeline, extension, id string) (*model.Subscription, error) {
	var out struct {
		Subscription *model.Subscription `json:"subscription"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.subscriptionPath(pipeline, extension, id)}, &out)
	return out.Subscription, err
}

// SetSubscriptionStatus sets a subscription active or disabled.
func (c *Client) SetSubscriptionStatus(ctx context.Context, pipeline, extension, id, status string) (*model.Subscription, error) {
	var out struct {
		Subscription *model.Subscription `json:"subscription"`
	}
	_, err := c.do(ctx, request{method: http.MethodPatch, path: c.subscriptionPath(pipeline, extension, id), body: map[string]string{"status": status}}, &out)
	return out.Subscription, err
}

// Unsubscribe deletes a subscription.
func (c *Client) Unsubscribe(ctx context.Context, pipeline, extension, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: c.subscriptionPath(pipeline, extension, id)}, nil)
	return err
}

// DebugExtension answers the running extension's debug dump (free text;
// the built-in extensions give JSON). Admins only; 503 while the extension
// is not running.
func (c *Client) DebugExtension(ctx context.Context, id string) (string, error) {
	var out struct {
		Info string `json:"info"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/extensions/" + seg(id) + "/debug"}, &out)
	return out.Info, err
}

// ExtensionLogs opens the extension container's output. With follow the
// stream stays open until the container exits; a cut stream resumes on
// another node from the byte it had reached, like TaskLogs. The caller
// closes it.
func (c *Client) ExtensionLogs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	name := fmt.Sprintf("the logs of extension %q", id)
	return c.followLogs(ctx, name, request{method: http.MethodGet, path: "/api/extensions/" + seg(id) + "/logs", query: q})
}

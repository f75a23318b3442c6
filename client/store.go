package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/goferhq/gofer/store/model"
)

// Secrets and objects. A pipeline secret or object lives under a pipeline
// of the client's namespace; run objects under one run; global secrets
// are cluster-wide and admin-only.

// SecretScope names where a secret lives: a pipeline of the client's
// namespace, or the global store when Pipeline is empty.
type SecretScope struct {
	Pipeline string
}

func (c *Client) secretsPath(sc SecretScope) string {
	if sc.Pipeline == "" {
		return "/api/secrets/global"
	}
	return c.pipelinePath(sc.Pipeline) + "/secrets"
}

// ListSecrets lists secret metadata (never values).
func (c *Client) ListSecrets(ctx context.Context, sc SecretScope, p Page) ([]*model.Secret, error) {
	var out struct {
		Secrets []*model.Secret `json:"secrets"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.secretsPath(sc), query: p.query()}, &out)
	return out.Secrets, err
}

// GetSecret reads a secret's metadata and, when includeSecret, its value
// (nil otherwise).
func (c *Client) GetSecret(ctx context.Context, sc SecretScope, key string, includeSecret bool) (*model.SecretValue, error) {
	var out model.SecretValue
	q := url.Values{}
	if includeSecret {
		q.Set("include_secret", "true")
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.secretsPath(sc) + "/" + seg(key), query: q}, &out)
	return &out, err
}

// PutSecret stores a secret; force replaces an existing one. namespaces
// (global secrets only) are the expressions of the namespaces that may
// use it.
func (c *Client) PutSecret(ctx context.Context, sc SecretScope, key, value string, namespaces []string, force bool) (*model.Secret, error) {
	var out struct {
		Secret *model.Secret `json:"secret"`
	}
	body := map[string]any{"key": key, "content": value, "force": force}
	if sc.Pipeline == "" {
		body["namespaces"] = namespaces
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.secretsPath(sc), body: body}, &out)
	return out.Secret, err
}

// DeleteSecret deletes a secret.
func (c *Client) DeleteSecret(ctx context.Context, sc SecretScope, key string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: c.secretsPath(sc) + "/" + seg(key)}, nil)
	return err
}

// ObjectScope names where an object lives: a pipeline of the client's
// namespace, or one of its runs when Run is set.
type ObjectScope struct {
	Pipeline string
	Run      int64
}

func (c *Client) objectsPath(sc ObjectScope) string {
	if sc.Run == 0 {
		return c.pipelinePath(sc.Pipeline) + "/objects"
	}
	return c.runPath(sc.Pipeline, sc.Run) + "/objects"
}

// ListObjects lists object metadata.
func (c *Client) ListObjects(ctx context.Context, sc ObjectScope, p Page) ([]*model.Object, error) {
	var out struct {
		Objects []*model.Object `json:"objects"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.objectsPath(sc), query: p.query()}, &out)
	return out.Objects, err
}

// GetObject reads an object's bytes.
func (c *Client) GetObject(ctx context.Context, sc ObjectScope, key string) ([]byte, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: c.objectsPath(sc) + "/" + seg(key), stream: true}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// PutObject stores an object; force replaces an existing one.
func (c *Client) PutObject(ctx context.Context, sc ObjectScope, key string, data []byte, force bool) (*model.Object, error) {
	var out struct {
		Object *model.Object `json:"object"`
	}
	if data == nil {
		data = []byte{}
	}
	q := url.Values{"force": {strconv.FormatBool(force)}}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.objectsPath(sc) + "/" + seg(key), query: q, raw: data}, &out)
	return out.Object, err
}

// DeleteObject deletes an object.
func (c *Client) DeleteObject(ctx context.Context, sc ObjectScope, key string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: c.objectsPath(sc) + "/" + seg(key)}, nil)
	return err
}

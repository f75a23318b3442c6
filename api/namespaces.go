package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/internal/fastjson"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

const (
	maxNameLength        = 256
	maxDescriptionLength = 4096
)

type createNamespaceRequest struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type updateNamespaceRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// decodeFast reads {"name":"…","description":"…"} (either or both, or
// neither) as json.Marshal writes it: every namespace PATCH of the CLI and
// the SDKs.
func (r *updateNamespaceRequest) decodeFast(body []byte) bool {
	var out updateNamespaceRequest
	d := fastjson.NewDecoder(body)
	// A value is a string or null (a nil pointer, as encoding/json sets).
	str := func() (*string, bool) {
		if d.Peek() == 'n' {
			return nil, d.Null()
		}
		s, ok := d.String()
		return &s, ok
	}
	ok := d.Fields(func(key string) bool {
		var ok bool
		switch key {
		case "name":
			out.Name, ok = str()
		case "description":
			out.Description, ok = str()
		}
		return ok
	})
	if !ok || !d.End() {
		return false
	}
	*r = out
	return true
}

// respondNamespace answers {"namespace": ns} with the bytes c.JSON would
// write (no HTML escaping, a final newline, indented for ?pretty), without
// reflection: every namespace write answers one.
func respondNamespace(c echo.Context, status int, ns *model.Namespace) error {
	if _, pretty := c.QueryParams()["pretty"]; pretty || c.Echo().Debug {
		return c.JSON(status, wrap("namespace", ns)) // indented
	}
	b := make([]byte, 0, 96+len(ns.ID)+len(ns.Name)+len(ns.Description))
	b = store.AppendNamespace(append(b, `{"namespace":`...), ns, false)
	return c.JSONBlob(status, append(b, "}\n"...))
}

func checkNameAndDescription(name, description *string) error {
	if name != nil && len(*name) > maxNameLength {
		return badRequest("name may be at most %d characters", maxNameLength)
	}
	if description != nil && len(*description) > maxDescriptionLength {
		return badRequest("description may be at most %d characters", maxDescriptionLength)
	}
	return nil
}

func (s *Server) listNamespaces(c echo.Context) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	caller := callerOf(c)
	var out []*model.Namespace
	err = s.view(func(tx *bbolt.Tx) error {
		out, err = store.ListNamespaces(tx, page, func(ns *model.Namespace) bool {
			return s.authz.allowed(caller, []resourceRef{{kind: "namespaces", target: ns.ID}}, model.ActionRead)
		})
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("namespaces", out))
}

func (s *Server) getNamespace(c echo.Context) error {
	if err := validID("namespace id", c.Param("ns")); err != nil {
		return err
	}
	ns, err := s.lookupNamespace(c.Param("ns"))
	if err != nil {
		return err
	}
	return respondNamespace(c, http.StatusOK, ns)
}

// lookupNamespace reads a namespace, 404 if it does not exist.
func (s *Server) lookupNamespace(id string) (*model.Namespace, error) {
	var ns *model.Namespace
	err := s.view(func(tx *bbolt.Tx) (err error) {
		ns, err = store.GetNamespace(tx, id)
		return err
	})
	if err == nil && ns == nil {
		return nil, notFound("namespace %q does not exist", id)
	}
	return ns, err
}

func (s *Server) createNamespace(c echo.Context) error {
	var req createNamespaceRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := validID("id", req.ID); err != nil {
		return err
	}
	if err := checkNameAndDescription(&req.Name, &req.Description); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = req.ID
	}
	ns, err := applyAs[model.Namespace](s, c, fsm.CmdNamespaceCreate, fsm.NamespaceCreate{
		Namespace: model.Namespace{ID: req.ID, Name: req.Name, Description: req.Description},
	})
	if err != nil {
		return err
	}
	return respondNamespace(c, http.StatusCreated, ns)
}

func (s *Server) updateNamespace(c echo.Context) error {
	id := c.Param("ns")
	if err := validID("namespace id", id); err != nil {
		return err
	}
	var req updateNamespaceRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkNameAndDescription(req.Name, req.Description); err != nil {
		return err
	}
	if req.Name == nil && req.Description == nil {
		// An empty PATCH ({} or null) changes nothing: no raft entry, and
		// modified stays; the answer is the namespace as it is.
		ns, err := s.lookupNamespace(id)
		if err != nil {
			return err
		}
		return respondNamespace(c, http.StatusOK, ns)
	}
	ns, err := applyAs[model.Namespace](s, c, fsm.CmdNamespaceUpdate, fsm.NamespaceUpdate{ID: id, Name: req.Name, Description: req.Description})
	if err != nil {
		return err
	}
	return respondNamespace(c, http.StatusOK, ns)
}

func (s *Server) deleteNamespace(c echo.Context) error {
	id := c.Param("ns")
	if err := validID("namespace id", id); err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdNamespaceDelete, fsm.NamespaceDelete{ID: id}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

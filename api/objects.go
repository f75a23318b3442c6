package api

import (
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Object size bounds. An object travels base64-encoded inside one raft
// entry, and entries stay under 512 KiB (docs/architecture.md §3), so 320 KiB is the
// most object_store.max_object_bytes may allow.
const (
	DefaultMaxObjectBytes = 256 << 10
	MaxObjectBytesLimit   = 320 << 10
)

// objectScope is where an object route points: a pipeline's objects
// (run 0) or one run's.
type objectScope struct {
	ns, pipeline string
	run          int64
}

func objectScopeOf(c echo.Context) (objectScope, error) {
	sc := objectScope{ns: c.Param("ns"), pipeline: c.Param("pipeline")}
	if err := validID("namespace id", sc.ns); err != nil {
		return sc, err
	}
	if err := validID("pipeline id", sc.pipeline); err != nil {
		return sc, err
	}
	if c.Param("run") != "" {
		run, err := parseInt64Param(c, "run")
		if err != nil {
			return sc, err
		}
		if run == 0 {
			return sc, badRequest("run ids start at 1")
		}
		sc.run = run
	}
	return sc, nil
}

// objectTarget is the scope and :key of a route naming one object.
func objectTarget(c echo.Context) (objectScope, string, error) {
	sc, err := objectScopeOf(c)
	if err != nil {
		return sc, "", err
	}
	key, err := keyParam(c)
	return sc, key, err
}

func (sc objectScope) ref(key string) fsm.ObjectRef {
	return fsm.ObjectRef{NamespaceID: sc.ns, PipelineID: sc.pipeline, RunID: sc.run, Key: key}
}

func (sc objectScope) describe(key string) string {
	if sc.run == 0 {
		return "object " + strconv.Quote(key) + " of pipeline " + sc.ns + "/" + sc.pipeline
	}
	return "object " + strconv.Quote(key) + " of run " + strconv.FormatInt(sc.run, 10) + " of pipeline " + sc.ns + "/" + sc.pipeline
}

func (s *Server) listObjects(c echo.Context) error {
	sc, err := objectScopeOf(c)
	if err != nil {
		return err
	}
	if err := s.checkRunStored(sc); err != nil {
		return err
	}
	return respondList(s, c, "objects", func(tx *bbolt.Tx, page store.Page) ([]*model.Object, error) {
		return store.ListObjects(tx, sc.ns, sc.pipeline, sc.run, page)
	})
}

// checkRunStored answers a run's object list as GET of the run does when
// the run is not stored (404, saying so when run retention deleted it),
// rather than with an empty list that reads as a run without objects.
func (s *Server) checkRunStored(sc objectScope) error {
	if sc.run == 0 {
		return nil
	}
	var missing error
	err := s.view(func(tx *bbolt.Tx) error {
		r, err := store.GetRun(tx, sc.ns, sc.pipeline, sc.run)
		if err != nil || r != nil {
			return err
		}
		p, err := store.GetPipeline(tx, sc.ns, sc.pipeline)
		missing = runNotFound(p, sc.pipeline, sc.run)
		return err
	})
	if err != nil {
		return err
	}
	return missing
}

// getObject serves an object's bytes as they were stored.
func (s *Server) getObject(c echo.Context) error {
	sc, key, err := objectTarget(c)
	if err != nil {
		return err
	}
	var data []byte
	var info *model.Object
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		info, err = store.GetObjectInfo(tx, sc.ns, sc.pipeline, sc.run, key)
		data = store.GetObjectData(tx, sc.ns, sc.pipeline, sc.run, key)
		return err
	}); err != nil {
		return err
	}
	if info == nil {
		return notFound("%s does not exist", sc.describe(key))
	}
	return c.Blob(http.StatusOK, echo.MIMEOctetStream, data)
}

// putObject stores the raw request body. Without force=true an existing
// key is a conflict.
func (s *Server) putObject(c echo.Context) error {
	sc, key, err := objectTarget(c)
	if err != nil {
		return err
	}
	force, err := boolQuery(c, "force")
	if err != nil {
		return err
	}
	limit := s.opts.MaxObjectBytes
	data, err := io.ReadAll(io.LimitReader(c.Request().Body, limit+1))
	if err != nil {
		return badRequest("reading the object: %s", err)
	}
	if int64(len(data)) > limit {
		return tooLarge("%s is larger than object_store.max_object_bytes (%d bytes)", sc.describe(key), limit)
	}
	put := fsm.ObjectPut{ObjectRef: sc.ref(key), Data: data, Force: force}
	if sc.run == 0 {
		put.PipelineLimit = s.opts.PipelineObjectLimit
	} else {
		put.RunLimit = s.opts.RunObjectLimit
	}
	obj, err := applyAs[model.Object](s, c, fsm.CmdObjectPut, put)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wrap("object", obj))
}

func (s *Server) deleteObject(c echo.Context) error {
	sc, key, err := objectTarget(c)
	if err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdObjectDelete, sc.ref(key)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

package fsm

import (
	"fmt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func applyNamespaceCreate(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[NamespaceCreate](body)
	existing, err := store.GetNamespace(a.tx, cmd.Namespace.ID)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return nil, fmt.Errorf("%w: namespace %q already exists", ErrConflict, cmd.Namespace.ID)
	}
	ns := cmd.Namespace
	ns.Created, ns.Modified = a.meta.Timestamp, a.meta.Timestamp
	if err := store.PutNamespace(a.tx, &ns); err != nil {
		return nil, err
	}
	return &ns, a.emitIn(ns.ID, "", model.EventCreatedNamespace, model.EventDetails{"namespace_id": ns.ID})
}

func applyNamespaceUpdate(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[NamespaceUpdate](body)
	ns, err := mustNamespace(a, cmd.ID)
	if err != nil {
		return nil, err
	}
	if cmd.Name != nil {
		ns.Name = *cmd.Name
	}
	if cmd.Description != nil {
		ns.Description = *cmd.Description
	}
	ns.Modified = a.meta.Timestamp
	if err := store.PutNamespace(a.tx, ns); err != nil {
		return nil, err
	}
	return ns, a.emitIn(ns.ID, "", model.EventUpdatedNamespace, model.EventDetails{"namespace_id": ns.ID})
}

func applyNamespaceDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[NamespaceDelete](body)
	if cmd.ID == model.DefaultNamespace {
		return nil, fmt.Errorf("%w: the %q namespace cannot be deleted", ErrConflict, model.DefaultNamespace)
	}
	if _, err := mustNamespace(a, cmd.ID); err != nil {
		return nil, err
	}
	if err := revokeRunTokensOf(a, cmd.ID, ""); err != nil {
		return nil, err
	}
	if err := store.DeleteNamespacePipelines(a.tx, cmd.ID); err != nil {
		return nil, err
	}
	if err := store.DeleteNamespace(a.tx, cmd.ID); err != nil {
		return nil, err
	}
	return nil, a.emitIn(cmd.ID, "", model.EventDeletedNamespace, model.EventDetails{"namespace_id": cmd.ID})
}

func mustNamespace(a *applyCtx, id string) (*model.Namespace, error) {
	ns, err := store.GetNamespace(a.tx, id)
	if err != nil {
		return nil, err
	}
	if ns == nil {
		return nil, fmt.Errorf("%w: namespace %q does not exist", ErrNotFound, id)
	}
	return ns, nil
}

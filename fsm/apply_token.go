package fsm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// applyTokenBootstrap creates the first admin token, exactly once per
// cluster.
func applyTokenBootstrap(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TokenCreate](body)
	sys, err := store.GetSystem(a.tx)
	if err != nil {
		return nil, err
	}
	if sys.BootstrapTokenCreated {
		return nil, fmt.Errorf("%w: the bootstrap token has already been created", ErrConflict)
	}
	if err := checkNewToken(a, &cmd.Token); err != nil {
		return nil, err
	}
	sys.BootstrapTokenCreated = true
	if err := store.PutSystem(a.tx, sys); err != nil {
		return nil, err
	}
	return putNewToken(a, &cmd.Token)
}

func applyTokenCreate(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TokenCreate](body)
	for _, r := range cmd.Token.Roles {
		role, err := store.GetRole(a.tx, r)
		if err != nil {
			return nil, err
		}
		if role == nil {
			return nil, fmt.Errorf("%w: role %q does not exist", ErrInvalid, r)
		}
	}
	if err := checkNewToken(a, &cmd.Token); err != nil {
		return nil, err
	}
	return putNewToken(a, &cmd.Token)
}

// checkNewToken refuses a token whose id or secret hash is already stored
// (both are random, so this guards against a leader bug, not bad luck).
func checkNewToken(a *applyCtx, t *model.StoredToken) error {
	if existing, err := store.GetToken(a.tx, t.ID); err != nil || existing != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: token %q already exists", ErrConflict, t.ID)
	}
	if existing, err := store.GetTokenByHash(a.tx, t.Hash); err != nil || existing != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: token secret collides with an existing token", ErrConflict)
	}
	return nil
}

// putNewToken writes a token that passed checkNewToken.
func putNewToken(a *applyCtx, t *model.StoredToken) (any, error) {
	t.Created = a.meta.Timestamp
	if err := store.PutToken(a.tx, t); err != nil {
		return nil, err
	}
	return &t.Token, a.emit(model.EventCreatedToken, model.EventDetails{
		"token_id": t.ID, "user": t.User, "roles": strings.Join(t.Roles, ","),
	})
}

func mustToken(a *applyCtx, id string) (*model.StoredToken, error) {
	t, err := store.GetToken(a.tx, id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%w: token %q does not exist", ErrNotFound, id)
	}
	return t, nil
}

func applyTokenSetDisabled(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TokenSetDisabled](body)
	t, err := mustToken(a, cmd.ID)
	if err != nil {
		return nil, err
	}
	if t.Disabled == cmd.Disabled {
		return &t.Token, nil
	}
	t.Disabled = cmd.Disabled
	if err := store.PutToken(a.tx, t); err != nil {
		return nil, err
	}
	kind := model.EventEnabledToken
	if t.Disabled {
		kind = model.EventDisabledToken
	}
	return &t.Token, a.emit(kind, model.EventDetails{"token_id": t.ID})
}

func applyTokenDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TokenDelete](body)
	t, err := mustToken(a, cmd.ID)
	if err != nil {
		return nil, err
	}
	if err := store.DeleteToken(a.tx, t); err != nil {
		return nil, err
	}
	return nil, a.emit(model.EventDeletedToken, model.EventDetails{"token_id": t.ID})
}

func applyRoleCreate(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RoleCreate](body)
	existing, err := store.GetRole(a.tx, cmd.Role.ID)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return nil, fmt.Errorf("%w: role %q already exists", ErrConflict, cmd.Role.ID)
	}
	r := cmd.Role
	r.SystemRole = false
	r.Created, r.Modified = a.meta.Timestamp, a.meta.Timestamp
	if err := store.PutRole(a.tx, &r); err != nil {
		return nil, err
	}
	return &r, a.emit(model.EventCreatedRole, model.EventDetails{"role_id": r.ID})
}

func mustMutableRole(a *applyCtx, id string) (*model.Role, error) {
	r, err := store.GetRole(a.tx, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: role %q does not exist", ErrNotFound, id)
	}
	if r.SystemRole {
		return nil, fmt.Errorf("%w: role %q is built in and cannot be changed", ErrConflict, id)
	}
	return r, nil
}

func applyRoleUpdate(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RoleUpdate](body)
	r, err := mustMutableRole(a, cmd.ID)
	if err != nil {
		return nil, err
	}
	if cmd.Description != nil {
		r.Description = *cmd.Description
	}
	if cmd.Permissions != nil {
		r.Permissions = *cmd.Permissions
	}
	r.Modified = a.meta.Timestamp
	if err := store.PutRole(a.tx, r); err != nil {
		return nil, err
	}
	return r, a.emit(model.EventUpdatedRole, model.EventDetails{"role_id": r.ID})
}

// applyRoleDelete is command 18's meaning, kept for entries already in
// logs: it refuses a role that tokens still hold. Leaders issue
// CmdRoleDeleteDetach.
func applyRoleDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RoleDelete](body)
	if _, err := mustMutableRole(a, cmd.ID); err != nil {
		return nil, err
	}
	n, err := store.TokensWithRole(a.tx, cmd.ID)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, fmt.Errorf("%w: role %q is used by %d token(s); delete or change them first", ErrConflict, cmd.ID, n)
	}
	if err := store.DeleteRole(a.tx, cmd.ID); err != nil {
		return nil, err
	}
	return nil, a.emit(model.EventDeletedRole, model.EventDetails{"role_id": cmd.ID})
}

// applyRoleDeleteDetach deletes a role and takes it out of every token that
// holds it, in the same transaction, so those tokens lose what it granted
// at once (fail closed) — and a role created later under the same id grants
// them nothing. The event names the tokens affected. This is upstream's,
// Nomad's and Vault's answer (204), where command 18 refused with 409.
func applyRoleDeleteDetach(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RoleDelete](body)
	if _, err := mustMutableRole(a, cmd.ID); err != nil {
		return nil, err
	}
	held, err := store.TokensHoldingRole(a.tx, cmd.ID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(held))
	for _, t := range held {
		t.Roles = slices.DeleteFunc(t.Roles, func(r string) bool { return r == cmd.ID })
		if err := store.PutToken(a.tx, t); err != nil {
			return nil, err
		}
		ids = append(ids, t.ID)
	}
	if err := store.DeleteRole(a.tx, cmd.ID); err != nil {
		return nil, err
	}
	details := model.EventDetails{"role_id": cmd.ID}
	if len(ids) > 0 {
		details["tokens_affected"] = strings.Join(ids, ",")
	}
	return nil, a.emit(model.EventDeletedRole, details)
}

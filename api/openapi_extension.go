package api

import (
	"net/http"

	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/api/openapi"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// The extension contract: the HTTP API an extension serves and Gofer
// calls (docs/extensions.md, "The contract"). It is a second document,
// served at /api/docs/extension-openapi.json: its paths are the
// extension's, not Gofer's, and would clash with nothing here but read as
// if Gofer served them. sdk/go/extension checks its wire types against
// the committed copy, docs/extension-openapi.json.

// extensionInfo is GET /api/info's answer.
type extensionInfo struct {
	ExtensionID   string                  `json:"extension_id"`
	Documentation extension.Documentation `json:"documentation"`
}

// extensionEvent is POST /api/external-event's body. Body is the original
// request's bytes: a JSON array of numbers (0–255), as Gofer sends it, or
// a base64 string.
type extensionEvent struct {
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"`
}

// extensionError is an extension's error answer (upstream's shape).
type extensionError struct {
	RequestID string `json:"request_id"`
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// BuildExtensionOpenAPI is the document of the extension contract.
func BuildExtensionOpenAPI() (*openapi.Document, error) {
	ok, none := http.StatusOK, http.StatusNoContent
	refused := openapi.Answer{Status: http.StatusBadRequest, ContentType: openapi.JSON, Type: extensionError{},
		Description: "refused, with the extension's message; also a missing or non-Bearer Authorization header"}
	ops := []openapi.Operation{
		{Method: http.MethodGet, Path: "/api/health", ID: "health", Tag: "extension", Public: true,
			Summary: "ready check, called every 2 s by the supervisor; any 2xx is ready", Answers: []openapi.Answer{{Status: none}}},
		{Method: http.MethodGet, Path: "/api/info", ID: "info", Tag: "extension",
			Summary: "the extension's documentation; called once it is ready", Answers: []openapi.Answer{{Status: ok, ContentType: openapi.JSON, Type: extensionInfo{}}}},
		{Method: http.MethodGet, Path: "/api/debug", ID: "debug", Tag: "extension",
			Summary: "free text about the extension's state (never secrets); Gofer's GET /api/extensions/{extension}/debug", Answers: []openapi.Answer{{Status: ok, ContentType: openapi.JSON, Type: debugAnswer{}}}},
		{Method: http.MethodPost, Path: "/api/subscribe", ID: "subscribe", Tag: "extension",
			Summary: "take a pipeline's subscription; params already interpolated (secrets resolved)",
			Body:    &openapi.Body{ContentType: openapi.JSON, Type: extcall.Subscription{}}, Answers: []openapi.Answer{{Status: none}, refused}},
		{Method: http.MethodDelete, Path: "/api/subscribe", ID: "unsubscribe", Tag: "extension",
			Summary: "drop a subscription; any 2xx is success",
			Body:    &openapi.Body{ContentType: openapi.JSON, Type: extcall.SubscriptionRef{}}, Answers: []openapi.Answer{{Status: none}}},
		{Method: http.MethodPost, Path: "/api/shutdown", ID: "shutdown", Tag: "extension",
			Summary: "stop serving; later calls get 503", Answers: []openapi.Answer{{Status: none}}},
		{Method: http.MethodPost, Path: "/api/external-event", ID: "externalEvent", Tag: "extension",
			Summary: "an external event (a webhook) Gofer received for the extension; body at most 25 MiB decoded",
			Body:    &openapi.Body{ContentType: openapi.JSON, Type: extensionEvent{}}, Answers: []openapi.Answer{{Status: none}, refused}},
	}
	return openapi.Build(openapi.Spec{
		Info: openapi.Info{Title: "Gofer extension contract", Version: APIVersion,
			Description: "The HTTP API a Gofer extension serves; Gofer is the client. Environment, limits and the calls an extension makes on Gofer are in docs/extensions.md (The contract)."},
		Tags:             []openapi.Tag{{Name: "extension", Description: "Served by the extension container."}},
		Bearer:           "GOFER_EXTENSION_SYSTEM_SECRET: Gofer presents it on every call but health; a wrong one is a 401",
		Error:            extensionError{},
		ErrorDescription: "an error: request_id, error_code and message",
	}, ops)
}

// Package openapi builds an OpenAPI 3.0 document from a route table and
// the Go types of the routes' bodies and answers, and renders it as a
// self-contained HTML page. It knows nothing of Gofer's server: the api
// package describes its routes as Operations (see api/openapi_routes.go).
package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Version is the OpenAPI version of the documents Build writes.
const Version = "3.0.3"

// Content types.
const (
	JSON        = "application/json"
	EventStream = "text/event-stream"
	Text        = "text/plain"
	Octets      = "application/octet-stream"
	HTML        = "text/html"
)

// Operation is one route as the generator sees it.
type Operation struct {
	Method string
	// Path in the router's form: /api/runs/:run.
	Path string
	// ID is the operation id, unique in the document.
	ID      string
	Tag     string
	Summary string
	// Access describes who may call the route; Public routes need no
	// token (security: []).
	Access string
	Public bool
	// IntParams names the path parameters that are integers; the others
	// are strings.
	IntParams []string
	Query     []Param
	Headers   []Param
	Body      *Body
	Answers   []Answer
	// Extensions are x- fields of the operation (x-gofer-…).
	Extensions map[string]any
}

// Param is a query or header parameter.
type Param struct {
	Name        string
	Description string
	// Type is a JSON schema type; "" is string.
	Type     string
	Required bool
}

// Body is a request body. Type is a value of the body's Go type for JSON
// (nil with another ContentType: raw bytes).
type Body struct {
	ContentType string
	Type        any
	Optional    bool
	Description string
}

// Answer is one answer of a route: a status and, unless it has none, a
// body of ContentType. JSON answers give a value of their Go type; event
// streams list their events.
type Answer struct {
	Status      int
	Description string
	ContentType string
	Type        any
	// Alternatives are further content types of the same status (a log
	// as plain text or, asked for, as an event stream).
	Alternatives []Answer
	Events       []Event
}

// Event is one kind of server-sent event of a stream.
type Event struct {
	// Name is the event: field; "" for an event without one (id only).
	Name        string
	Description string
	// ID says what the id: field carries.
	ID string
	// Data is a value of the Go type JSON-encoded in data:, or nil when
	// DataText describes it.
	Data     any
	DataText string
}

// Document is an OpenAPI document. Maps marshal with sorted keys, so the
// JSON is deterministic.
type Document struct {
	OpenAPI    string                          `json:"openapi"`
	Info       Info                            `json:"info"`
	Servers    []Server                        `json:"servers,omitempty"`
	Tags       []Tag                           `json:"tags,omitempty"`
	Paths      map[string]map[string]*PathItem `json:"paths"`
	Components Components                      `json:"components"`
}

// Info is the document's info object.
type Info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// Server is a server object.
type Server struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

// Tag groups operations.
type Tag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Components holds the shared schemas, answers and security schemes.
type Components struct {
	Schemas         map[string]*Schema         `json:"schemas"`
	Responses       map[string]*Response       `json:"responses,omitempty"`
	SecuritySchemes map[string]*SecurityScheme `json:"securitySchemes,omitempty"`
}

// SecurityScheme is a security scheme object.
type SecurityScheme struct {
	Type        string `json:"type"`
	Scheme      string `json:"scheme,omitempty"`
	Description string `json:"description,omitempty"`
}

// PathItem is an operation object (the generator's paths map a path to
// a method to one).
type PathItem struct {
	OperationID string                 `json:"operationId"`
	Tags        []string               `json:"tags,omitempty"`
	Summary     string                 `json:"summary"`
	Description string                 `json:"description,omitempty"`
	Security    *[]map[string][]string `json:"security,omitempty"`
	Parameters  []Parameter            `json:"parameters,omitempty"`
	RequestBody *RequestBody           `json:"requestBody,omitempty"`
	Responses   map[string]*Response   `json:"responses"`
	Extensions  map[string]any         `json:"-"`
}

// MarshalJSON writes the operation with its x- fields.
func (p *PathItem) MarshalJSON() ([]byte, error) {
	type plain PathItem
	b, err := json.Marshal((*plain)(p))
	if err != nil || len(p.Extensions) == 0 {
		return b, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extensions {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		m[k] = raw
	}
	return json.Marshal(m)
}

// Parameter is a parameter object.
type Parameter struct {
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema"`
}

// RequestBody is a request body object.
type RequestBody struct {
	Description string                `json:"description,omitempty"`
	Required    bool                  `json:"required"`
	Content     map[string]*MediaType `json:"content"`
}

// Response is a response object (or a $ref to a shared one).
type Response struct {
	Ref         string                `json:"$ref,omitempty"`
	Description string                `json:"description,omitempty"`
	Content     map[string]*MediaType `json:"content,omitempty"`
}

// MediaType is a media type object; XEvents lists a stream's events.
type MediaType struct {
	Schema  *Schema       `json:"schema"`
	XEvents []EventSchema `json:"x-events,omitempty"`
}

// EventSchema documents one kind of server-sent event.
type EventSchema struct {
	Event       string  `json:"event,omitempty"`
	Description string  `json:"description,omitempty"`
	ID          string  `json:"id,omitempty"`
	Data        *Schema `json:"data,omitempty"`
	DataText    string  `json:"dataText,omitempty"`
}

// Spec says what Build writes besides the operations.
type Spec struct {
	Info Info
	Tags []Tag
	// Bearer, when set, is the description of the bearer-token scheme
	// every non-public operation needs.
	Bearer string
	// Error is a value of the error answer's Go type; every operation's
	// default answer refers to it.
	Error any
	// ErrorDescription describes the error answer.
	ErrorDescription string
	// Override gives the schema of types with their own MarshalJSON.
	Override Override
	// Extra are values of types to list as components whatever the
	// operations refer to (those an Override refers to).
	Extra []any
}

var paramRE = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// PathTemplate is path in OpenAPI's form: /api/runs/{run}.
func PathTemplate(path string) string { return paramRE.ReplaceAllString(path, "{$1}") }

// Build makes the document of ops. It fails on an operation id used
// twice, a method and path given twice, or a type it cannot describe.
func Build(spec Spec, ops []Operation) (doc *Document, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	g := newSchemas(spec.Override)
	doc = &Document{OpenAPI: Version, Info: spec.Info, Tags: spec.Tags, Paths: map[string]map[string]*PathItem{},
		Components: Components{Schemas: g.components, Responses: map[string]*Response{}}}
	if spec.Bearer != "" {
		doc.Components.SecuritySchemes = map[string]*SecurityScheme{"bearer": {Type: "http", Scheme: "bearer", Description: spec.Bearer}}
	}
	if spec.Error != nil {
		doc.Components.Responses["Error"] = &Response{Description: spec.ErrorDescription,
			Content: map[string]*MediaType{JSON: {Schema: g.of(reflect.TypeOf(spec.Error))}}}
	}
	for _, v := range spec.Extra {
		g.of(reflect.TypeOf(v))
	}
	ids := map[string]bool{}
	for _, op := range ops {
		if op.ID == "" || ids[op.ID] {
			return nil, fmt.Errorf("%s %s: operation id %q empty or used twice", op.Method, op.Path, op.ID)
		}
		ids[op.ID] = true
		p := PathTemplate(op.Path)
		method := strings.ToLower(op.Method)
		if doc.Paths[p] == nil {
			doc.Paths[p] = map[string]*PathItem{}
		}
		if doc.Paths[p][method] != nil {
			return nil, fmt.Errorf("%s %s given twice", op.Method, op.Path)
		}
		item, err := operation(g, spec, op)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", op.Method, op.Path, err)
		}
		doc.Paths[p][method] = item
	}
	return doc, nil
}

func operation(g *schemas, spec Spec, op Operation) (*PathItem, error) {
	item := &PathItem{OperationID: op.ID, Summary: op.Summary, Responses: map[string]*Response{}, Extensions: op.Extensions}
	if op.Tag != "" {
		item.Tags = []string{op.Tag}
	}
	if op.Access != "" {
		item.Description = "Needs: " + op.Access + "."
	}
	if spec.Bearer != "" && op.Public {
		item.Security = &[]map[string][]string{}
	} else if spec.Bearer != "" {
		item.Security = &[]map[string][]string{{"bearer": {}}}
	}
	ints := map[string]bool{}
	for _, n := range op.IntParams {
		ints[n] = true
	}
	for _, m := range paramRE.FindAllStringSubmatch(op.Path, -1) {
		s := &Schema{Type: "string"}
		if ints[m[1]] {
			s = &Schema{Type: "integer", Format: "int64"}
			delete(ints, m[1])
		}
		item.Parameters = append(item.Parameters, Parameter{Name: m[1], In: "path", Required: true, Schema: s})
	}
	if len(ints) > 0 {
		return nil, fmt.Errorf("integer parameters %v are not in the path", keys(ints))
	}
	for _, q := range op.Query {
		item.Parameters = append(item.Parameters, param("query", q))
	}
	for _, h := range op.Headers {
		item.Parameters = append(item.Parameters, param("header", h))
	}
	if b := op.Body; b != nil {
		mt := &MediaType{Schema: &Schema{Type: "string", Format: "binary"}}
		if b.ContentType == JSON {
			if b.Type == nil {
				return nil, fmt.Errorf("a JSON body needs its type")
			}
			mt.Schema = g.of(reflect.TypeOf(b.Type))
		}
		item.RequestBody = &RequestBody{Description: b.Description, Required: !b.Optional, Content: map[string]*MediaType{b.ContentType: mt}}
	}
	if len(op.Answers) == 0 {
		return nil, fmt.Errorf("no answers")
	}
	for _, a := range op.Answers {
		code := strconv.Itoa(a.Status)
		if item.Responses[code] != nil {
			return nil, fmt.Errorf("answer %d given twice", a.Status)
		}
		r := &Response{Description: a.Description}
		if r.Description == "" {
			r.Description = statusText(a.Status)
		}
		for _, alt := range append([]Answer{a}, a.Alternatives...) {
			if alt.ContentType == "" {
				continue
			}
			mt, err := media(g, alt)
			if err != nil {
				return nil, err
			}
			if r.Content == nil {
				r.Content = map[string]*MediaType{}
			}
			r.Content[alt.ContentType] = mt
		}
		item.Responses[code] = r
	}
	if spec.Error != nil {
		item.Responses["default"] = &Response{Ref: "#/components/responses/Error"}
	}
	return item, nil
}

func media(g *schemas, a Answer) (*MediaType, error) {
	switch a.ContentType {
	case JSON:
		if a.Type == nil {
			return nil, fmt.Errorf("a JSON answer needs its type")
		}
		return &MediaType{Schema: g.of(reflect.TypeOf(a.Type))}, nil
	case EventStream:
		if len(a.Events) == 0 {
			return nil, fmt.Errorf("an event stream needs its events")
		}
		mt := &MediaType{Schema: &Schema{Type: "string", Description: "server-sent events; the events are listed in x-events"}}
		for _, e := range a.Events {
			es := EventSchema{Event: e.Name, Description: e.Description, ID: e.ID, DataText: e.DataText}
			if e.Data != nil {
				es.Data = g.of(reflect.TypeOf(e.Data))
			}
			mt.XEvents = append(mt.XEvents, es)
		}
		return mt, nil
	default:
		return &MediaType{Schema: &Schema{Type: "string", Format: "binary"}}, nil
	}
}

func param(in string, p Param) Parameter {
	t := p.Type
	if t == "" {
		t = "string"
	}
	return Parameter{Name: p.Name, In: in, Description: p.Description, Required: p.Required, Schema: &Schema{Type: t}}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 204:
		return "No Content"
	}
	return "status " + strconv.Itoa(code)
}

// Marshal is the document as indented JSON with a final newline, the
// form served and committed.
func (d *Document) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// PathParams lists the names of path's :param segments, in order.
func PathParams(path string) []string {
	var out []string
	for _, m := range paramRE.FindAllStringSubmatch(path, -1) {
		out = append(out, m[1])
	}
	return out
}

package openapi

import (
	"bytes"
	"html/template"
	"sort"
	"strings"
)

// HTML renders the document as one self-contained page: no scripts, no
// stylesheets or fonts from elsewhere, so it reads the same offline and
// behind a strict Content-Security-Policy. specURL is where the JSON is
// served (linked from the page).
func (d *Document) HTML(specURL string) ([]byte, error) {
	type opView struct {
		Method, Path string
		Op           *PathItem
	}
	type group struct {
		Tag Tag
		Ops []opView
	}
	byTag := map[string]*group{}
	var groups []*group
	for _, t := range d.Tags {
		g := &group{Tag: t}
		byTag[t.Name] = g
		groups = append(groups, g)
	}
	paths := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		methods := make([]string, 0, len(d.Paths[p]))
		for m := range d.Paths[p] {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			op := d.Paths[p][m]
			tag := ""
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			g := byTag[tag]
			if g == nil {
				g = &group{Tag: Tag{Name: tag}}
				byTag[tag] = g
				groups = append(groups, g)
			}
			g.Ops = append(g.Ops, opView{Method: strings.ToUpper(m), Path: p, Op: op})
		}
	}
	names := make([]string, 0, len(d.Components.Schemas))
	for n := range d.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	err := page.Execute(&b, map[string]any{"Doc": d, "Groups": groups, "Schemas": names, "SpecURL": specURL})
	return b.Bytes(), err
}

// typeText writes a schema in one line: a link for a component, the
// shape of an array, a map or an inline object.
func typeText(s *Schema) template.HTML {
	var b strings.Builder
	writeType(&b, s, 0)
	return template.HTML(b.String()) //nolint:gosec // built from escaped parts
}

func writeType(b *strings.Builder, s *Schema, depth int) {
	if s == nil {
		b.WriteString("—")
		return
	}
	switch {
	case s.Ref != "":
		n := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		b.WriteString(`<a href="#schema-` + template.HTMLEscapeString(n) + `">` + template.HTMLEscapeString(n) + `</a>`)
	case s.Type == "array":
		b.WriteString("[")
		writeType(b, s.Items, depth)
		b.WriteString("]")
	case s.Type == "object" && s.AdditionalProperties != nil:
		b.WriteString("{string: ")
		writeType(b, s.AdditionalProperties, depth)
		b.WriteString("}")
	case s.Type == "object":
		if depth > 3 {
			b.WriteString("{…}")
			return
		}
		b.WriteString("{")
		for i, k := range sortedKeys(s.Properties) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(template.HTMLEscapeString(k))
			if !contains(s.Required, k) {
				b.WriteString("?")
			}
			b.WriteString(": ")
			writeType(b, s.Properties[k], depth+1)
		}
		b.WriteString("}")
	case s.Type == "":
		b.WriteString("any")
	default:
		b.WriteString(template.HTMLEscapeString(s.Type))
		if s.Format != "" {
			b.WriteString("(" + template.HTMLEscapeString(s.Format) + ")")
		}
	}
	if s.Nullable {
		b.WriteString(" | null")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"type":  typeText,
	"keys":  sortedKeys[*Schema],
	"codes": sortedKeys[*Response],
	"media": sortedKeys[*MediaType],
	"req":   contains,
	"lower": strings.ToLower,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Doc.Info.Title}} {{.Doc.Info.Version}}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2129}
nav{position:fixed;top:0;bottom:0;left:0;width:17rem;overflow:auto;background:#f4f5f7;padding:1rem;box-sizing:border-box;font-size:13px}
nav a{display:block;color:#1d2129;text-decoration:none;padding:1px 0}
main{margin-left:17rem;padding:1rem 2rem;max-width:70rem}
code,.t{font:13px ui-monospace,monospace}
.op{border:1px solid #dfe1e6;border-radius:4px;margin:.8rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:bold;font:bold 13px ui-monospace,monospace}
.get{color:#0b6e4f}.post{color:#1c5fb8}.patch{color:#8a5a00}.delete{color:#b3261e}.head{color:#555}
table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #dfe1e6;padding:2px 6px;text-align:left;vertical-align:top;font-size:13px}
h2{border-bottom:1px solid #dfe1e6;margin-top:2rem}.s{color:#555}
</style></head><body>
<nav><strong>{{.Doc.Info.Title}}</strong><br><a href="{{.SpecURL}}">OpenAPI JSON</a><br>
{{range .Groups}}<a href="#tag-{{.Tag.Name}}"><b>{{.Tag.Name}}</b></a>{{range .Ops}}<a href="#{{.Op.OperationID}}"><span class="t">{{.Method}}</span> {{.Path}}</a>{{end}}{{end}}
<a href="#schemas"><b>Schemas</b></a></nav>
<main><h1>{{.Doc.Info.Title}} <small>{{.Doc.Info.Version}}</small></h1>
<p>{{.Doc.Info.Description}}</p><p>The machine-readable document: <a href="{{.SpecURL}}"><code>{{.SpecURL}}</code></a> (OpenAPI {{.Doc.OpenAPI}}).</p>
{{range .Groups}}<h2 id="tag-{{.Tag.Name}}">{{.Tag.Name}}</h2>{{with .Tag.Description}}<p>{{.}}</p>{{end}}
{{range .Ops}}<div class="op" id="{{.Op.OperationID}}"><span class="m {{lower .Method}}">{{.Method}}</span> <code>{{.Path}}</code>
<div>{{.Op.Summary}}</div>{{with .Op.Description}}<div class="s">{{.}}</div>{{end}}
{{with .Op.Parameters}}<table><tr><th>Parameter</th><th>In</th><th>Type</th><th></th></tr>{{range .}}<tr><td><code>{{.Name}}</code>{{if .Required}} *{{end}}</td><td>{{.In}}</td><td class="t">{{type .Schema}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{with .Op.RequestBody}}<div>Body{{if not .Required}} (optional){{end}}: {{range $ct, $m := .Content}}<code>{{$ct}}</code> <span class="t">{{type $m.Schema}}</span>{{end}}{{with .Description}} — {{.}}{{end}}</div>{{end}}
<table>{{$r := .Op.Responses}}{{range codes $r}}{{$a := index $r .}}<tr><td>{{.}}</td><td>{{if $a.Ref}}the error answer (<a href="#schema-ErrorBody">ErrorBody</a>){{else}}{{$a.Description}}{{range $ct := media $a.Content}}{{$m := index $a.Content $ct}}<br><code>{{$ct}}</code> <span class="t">{{type $m.Schema}}</span>{{range $m.XEvents}}<br>· event <code>{{if .Event}}{{.Event}}{{else}}(none){{end}}</code>{{with .ID}}, id: {{.}}{{end}}{{with .Data}}, data: <span class="t">{{type .}}</span>{{end}}{{with .DataText}}, data: {{.}}{{end}}{{with .Description}} — {{.}}{{end}}{{end}}{{end}}{{end}}</td></tr>{{end}}</table>
</div>{{end}}{{end}}
<h2 id="schemas">Schemas</h2>
{{range $n := .Schemas}}{{$s := index $.Doc.Components.Schemas $n}}<h3 id="schema-{{$n}}">{{$n}}</h3>
{{if $s.Properties}}<table><tr><th>Field</th><th>Type</th></tr>{{range $k := keys $s.Properties}}<tr><td><code>{{$k}}</code>{{if req $s.Required $k}}{{else}}?{{end}}</td><td class="t">{{type (index $s.Properties $k)}}</td></tr>{{end}}</table>{{else}}<p class="t">{{type $s}}</p>{{end}}{{end}}
</main></body></html>
`))

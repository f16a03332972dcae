package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// converter turns JSON Schema 2020-12 files into OpenAPI 3.0 schema components. A
// file's root becomes a component named by its title, and each of its $defs a component
// named in CamelCase, when something references it.
type converter struct {
	components *yaml.Node            // mapping: component name -> schema
	files      map[string]*yaml.Node // absolute path -> the file's root, as read
	names      map[string]string     // absolute path, or path#name of a definition -> component name
}

func newConverter() *converter {
	return &converter{components: mapping(), files: map[string]*yaml.Node{}, names: map[string]string{}}
}

// keywords that mean the same in both dialects and are copied as they are.
var sameKeywords = map[string]bool{
	"type": true, "title": true, "description": true, "required": true, "enum": true,
	"minimum": true, "maximum": true, "minLength": true, "maxLength": true,
	"pattern": true, "uniqueItems": true, "minItems": true, "maxItems": true,
	"format": true, "default": true,
}

// load reads a schema file once and sets its $defs aside.
func (c *converter) load(abs string) (*yaml.Node, error) {
	if root, ok := c.files[abs]; ok {
		return root, nil
	}
	root, err := readNode(abs)
	if err != nil {
		return nil, err
	}
	c.files[abs] = root
	return root, nil
}

// addFile converts a schema file's root (and whatever it references) into a component
// and returns the component's name: the file's title.
func (c *converter) addFile(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if name, ok := c.names[abs]; ok {
		return name, nil
	}
	root, err := c.load(abs)
	if err != nil {
		return "", err
	}
	title := get(root, "title")
	if title == nil || title.Value == "" {
		return "", fmt.Errorf("%s: a schema file needs a title, its component name", path)
	}
	c.names[abs] = title.Value
	schema := mapping()
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "$defs" {
			schema.Content = append(schema.Content, root.Content[i], root.Content[i+1])
		}
	}
	if err := c.convert(schema, abs, ""); err != nil {
		return "", err
	}
	set(c.components, title.Value, schema)
	return title.Value, nil
}

// addDef converts one definition of a file into a component and returns its name.
func (c *converter) addDef(abs, def string) (string, error) {
	key := abs + "#" + def
	if name, ok := c.names[key]; ok {
		return name, nil
	}
	root, err := c.load(abs)
	if err != nil {
		return "", err
	}
	var schema *yaml.Node
	if defs := get(root, "$defs"); defs != nil {
		schema = get(defs, def)
	}
	if schema == nil {
		return "", fmt.Errorf("%s has no $defs/%s", abs, def)
	}
	name := camel(def)
	c.names[key] = name
	if err := c.convert(schema, abs, "/$defs/"+def); err != nil {
		return "", err
	}
	set(c.components, name, schema)
	return name, nil
}

// convert rewrites the schema n of file (at JSON pointer at) in place.
func (c *converter) convert(n *yaml.Node, file, at string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s%s: a schema must be an object", file, at)
	}
	if ref := get(n, "$ref"); ref != nil {
		target, err := c.ref(ref.Value, file)
		if err != nil {
			return fmt.Errorf("%s%s: %w", file, at, err)
		}
		// OpenAPI 3.0 ignores the siblings of $ref; drop them rather than pretend.
		n.Content = []*yaml.Node{str("$ref"), str(target)}
		return nil
	}
	out := mapping()
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		loc := at + "/" + key
		switch {
		case sameKeywords[key]:
			set(out, key, val)
		case key == "$schema" || key == "$id" || key == "$comment":
		case key == "$defs" && at == "":
		case key == "examples":
			if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
				return fmt.Errorf("%s%s: want a non-empty array", file, loc)
			}
			set(out, "example", val.Content[0])
		case key == "const":
			set(out, "enum", seq(val))
			if get(n, "type") == nil {
				set(out, "type", str(scalarType(val)))
			}
		case key == "properties":
			for j := 0; j+1 < len(val.Content); j += 2 {
				if err := c.convert(val.Content[j+1], file, loc+"/"+val.Content[j].Value); err != nil {
					return err
				}
			}
			set(out, key, val)
		case key == "items" || (key == "additionalProperties" && val.Kind == yaml.MappingNode):
			if err := c.convert(val, file, loc); err != nil {
				return err
			}
			set(out, key, val)
		case key == "additionalProperties":
			set(out, key, val)
		case key == "allOf" && at == "":
			if err := c.union(out, val, file); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s%s: keyword %q has no exact OpenAPI 3.0 form", file, loc, key)
		}
	}
	if get(out, "oneOf") != nil {
		// A union's branches carry type, required and properties themselves.
		del(out, "type")
		del(out, "required")
		del(out, "properties")
	}
	c.pointers(out)
	n.Content = out.Content
	return nil
}

// union converts allOf: [{if: {properties: {type: {const: T}}}, then: {$ref: F}}, ...],
// the union pattern of the schemas, into oneOf with a discriminator on "type".
func (c *converter) union(out, allOf *yaml.Node, file string) error {
	oneOf, mappings := seq(), mapping()
	for i, branch := range allOf.Content {
		bad := fmt.Errorf("%s/allOf/%d: want {if: {properties: {type: {const: T}}}, then: {$ref: F}}", file, i)
		ifn, then := get(branch, "if"), get(branch, "then")
		if ifn == nil || then == nil || get(then, "$ref") == nil || len(branch.Content) != 4 {
			return bad
		}
		props := get(ifn, "properties")
		if props == nil || get(props, "type") == nil || get(get(props, "type"), "const") == nil {
			return bad
		}
		target, err := c.ref(get(then, "$ref").Value, file)
		if err != nil {
			return fmt.Errorf("%s/allOf/%d: %w", file, i, err)
		}
		oneOf.Content = append(oneOf.Content, mapping(str("$ref"), str(target)))
		set(mappings, get(get(props, "type"), "const").Value, str(target))
	}
	set(out, "oneOf", oneOf)
	set(out, "discriminator", mapping(str("propertyName"), str("type"), str("mapping"), mappings))
	return nil
}

// ref maps a JSON Schema reference ("defs.json#/$defs/seq", "query.json") to the
// component it becomes ("#/components/schemas/Seq", "#/components/schemas/Query").
func (c *converter) ref(ref, file string) (string, error) {
	target, frag, _ := strings.Cut(ref, "#")
	if target == "" || strings.Contains(target, "://") {
		return "", fmt.Errorf("$ref %q: want a relative file reference", ref)
	}
	path := filepath.Join(filepath.Dir(file), target)
	if frag == "" || frag == "/" {
		name, err := c.addFile(path)
		if err != nil {
			return "", err
		}
		return "#/components/schemas/" + name, nil
	}
	def, ok := strings.CutPrefix(frag, "/$defs/")
	if !ok || strings.Contains(def, "/") {
		return "", fmt.Errorf("$ref %q: only a whole file or one of its $defs can be referenced", ref)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	name, err := c.addDef(abs, def)
	if err != nil {
		return "", err
	}
	return "#/components/schemas/" + name, nil
}

// pointers keeps a Go pointer on an optional field whose zero value is valid (false,
// 0, ""), so that "absent" and "zero" stay apart; other optional fields are plain
// values (the generator is told to prefer that).
func (c *converter) pointers(s *yaml.Node) {
	props := get(s, "properties")
	if props == nil {
		return
	}
	required := map[string]bool{}
	if r := get(s, "required"); r != nil {
		for _, n := range r.Content {
			required[n.Value] = true
		}
	}
	for i := 0; i+1 < len(props.Content); i += 2 {
		p := props.Content[i+1]
		if !required[props.Content[i].Value] && get(p, "$ref") == nil && zeroValid(p) {
			set(p, "x-go-type-skip-optional-pointer", boolean(false))
		}
	}
}

// zeroValid reports whether the Go zero value of a scalar schema is valid for it.
func zeroValid(s *yaml.Node) bool {
	t := get(s, "type")
	if t == nil || get(s, "enum") != nil {
		return false
	}
	switch t.Value {
	case "boolean":
		return true
	case "integer", "number":
		if m := get(s, "minimum"); m != nil && m.Value != "0" && !strings.HasPrefix(m.Value, "-") {
			return false
		}
		return true
	case "string":
		if m := get(s, "minLength"); m != nil && m.Value != "0" {
			return false
		}
		if p := get(s, "pattern"); p != nil {
			re, err := regexp.Compile(p.Value)
			return err == nil && re.MatchString("")
		}
		return true
	}
	return false
}

func scalarType(n *yaml.Node) string {
	switch n.Tag {
	case "!!int":
		return "integer"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	}
	return "string"
}

// camel turns a definition name such as "session_id" into "SessionId".
func camel(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '_' || r == '-' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// messagesDoc builds an OpenAPI document whose components are the given root schema
// files and everything they reference.
func messagesDoc(roots []string) (*yaml.Node, error) {
	c := newConverter()
	for _, r := range roots {
		if _, err := c.addFile(r); err != nil {
			return nil, err
		}
	}
	return mapping(
		str("openapi"), str("3.0.3"),
		str("info"), mapping(str("title"), str("agentws messages"), str("version"), str("see spec/PROTOCOL.md")),
		str("paths"), mapping(),
		str("components"), mapping(str("schemas"), c.components),
	), nil
}

// bundle loads an OpenAPI document and replaces each $ref to a schema file with a
// reference to a component converted from it.
func bundle(path string) (*yaml.Node, error) {
	root, err := readNode(path)
	if err != nil {
		return nil, err
	}
	c := newConverter()
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		if n.Kind == yaml.MappingNode {
			if ref := get(n, "$ref"); ref != nil && !strings.HasPrefix(ref.Value, "#") {
				target, err := c.ref(ref.Value, path)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				ref.Value = target
				return nil
			}
		}
		for _, child := range n.Content {
			if err := walk(child); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	comps := get(root, "components")
	if comps == nil {
		comps = mapping()
		set(root, "components", comps)
	}
	schemas := get(comps, "schemas")
	if schemas == nil {
		schemas = mapping()
		set(comps, "schemas", schemas)
	}
	for i := 0; i+1 < len(c.components.Content); i += 2 {
		name := c.components.Content[i].Value
		if get(schemas, name) != nil {
			return nil, fmt.Errorf("%s: component %q is both written out and referenced as a file", path, name)
		}
		set(schemas, name, c.components.Content[i+1])
	}
	return root, nil
}

// Package strictyaml decodes the human-edited YAML files of a governed
// repository (policy.yaml, signers.yaml) strictly: one document, no anchors or
// aliases, no duplicate keys, bounded size, and validated against a JSON Schema
// that ships in the binary. Every error names file:line:column and a fix.
package strictyaml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.yaml.in/yaml/v3"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// MaxSize bounds a governed YAML file.
const MaxSize = 1 << 20

// Error is a problem in a YAML file, located as precisely as possible.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Msg    string
	Hint   string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Schema is a compiled JSON Schema for one file kind.
type Schema struct {
	name string
	s    *jsonschema.Schema
}

// MustCompile compiles an embedded JSON Schema document. It panics on error,
// since the schemas are part of the binary.
func MustCompile(name string, schemaJSON []byte) *Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", name, err))
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	url := "groundzero:" + name
	if err := c.AddResource(url, doc); err != nil {
		panic(fmt.Sprintf("schema %s: %v", name, err))
	}
	s, err := c.Compile(url)
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", name, err))
	}
	return &Schema{name: name, s: s}
}

type pos struct{ line, col int }

// Decode parses data (the contents of file), validates it against schema and
// decodes it into v. v's struct tags must agree with the schema.
func Decode(file string, data []byte, schema *Schema, v any) error {
	if len(data) > MaxSize {
		return &Error{File: file, Msg: fmt.Sprintf("file is %d bytes, larger than the %d-byte limit", len(data), MaxSize),
			Hint: "a governed YAML file is small; check that the right file is in place"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return &Error{File: file, Msg: "file is empty", Hint: "restore the file, or recreate it with `groundzero init --force`"}
		}
		return syntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		line := extra.Line
		if err != nil {
			return syntaxError(file, err)
		}
		return &Error{File: file, Line: line, Msg: "more than one YAML document", Hint: "remove the `---` separator and everything after it"}
	}
	positions := map[string]pos{}
	inst, err := toValue(file, &doc, "", positions)
	if err != nil {
		return err
	}
	if err := schema.s.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return schemaError(file, ve, positions)
		}
		return &Error{File: file, Msg: err.Error()}
	}
	// The schema has accepted the shape; decode into the typed value. Known
	// fields only, as a second line of defence behind the schema.
	dec2 := yaml.NewDecoder(bytes.NewReader(data))
	dec2.KnownFields(true)
	if err := dec2.Decode(v); err != nil {
		return syntaxError(file, err)
	}
	return nil
}

var lineRE = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: (.*)`)

func syntaxError(file string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	e := &Error{File: file, Msg: msg, Hint: "fix the YAML syntax at that line (indentation, quoting, a missing colon)"}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			e.Column, _ = strconv.Atoi(m[2])
		}
		e.Msg = m[3]
	}
	return e
}

// toValue converts a YAML node into the JSON data model, recording the position
// of every value under its JSON pointer (and of every key under pointer+"#key").
func toValue(file string, n *yaml.Node, ptr string, positions map[string]pos) (any, error) {
	positions[ptr] = pos{n.Line, n.Column}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return toValue(file, n.Content[0], ptr, positions)
	case yaml.AliasNode:
		return nil, &Error{File: file, Line: n.Line, Column: n.Column, Msg: "YAML aliases are not allowed in governed files",
			Hint: "write the value out in full instead of `*" + n.Value + "`"}
	}
	if n.Anchor != "" {
		return nil, &Error{File: file, Line: n.Line, Column: n.Column, Msg: "YAML anchors are not allowed in governed files",
			Hint: "remove `&" + n.Anchor + "`"}
	}
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		if want := map[yaml.Kind]string{yaml.MappingNode: "!!map", yaml.SequenceNode: "!!seq"}[n.Kind]; n.ShortTag() != want {
			return nil, &Error{File: file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf("YAML tag %s is not allowed", n.Tag),
				Hint: "remove the tag"}
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return nil, &Error{File: file, Line: k.Line, Column: k.Column, Msg: "keys must be plain strings",
					Hint: "use a simple `name: value` key; merge keys (`<<`) are not allowed"}
			}
			if _, dup := m[k.Value]; dup {
				first := positions[ptr+"/"+escape(k.Value)+"#key"]
				return nil, &Error{File: file, Line: k.Line, Column: k.Column,
					Msg:  fmt.Sprintf("key %q appears twice (first at line %d)", k.Value, first.line),
					Hint: "keep one of the two entries"}
			}
			child := ptr + "/" + escape(k.Value)
			positions[child+"#key"] = pos{k.Line, k.Column}
			cv, err := toValue(file, val, child, positions)
			if err != nil {
				return nil, err
			}
			m[k.Value] = cv
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			cv, err := toValue(file, c, ptr+"/"+strconv.Itoa(i), positions)
			if err != nil {
				return nil, err
			}
			s = append(s, cv)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, &Error{File: file, Line: n.Line, Column: n.Column, Msg: err.Error()}
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, &Error{File: file, Line: n.Line, Column: n.Column, Msg: err.Error()}
			}
			if n.ShortTag() == "!!int" {
				var i int64
				if err := n.Decode(&i); err == nil {
					return json.Number(strconv.FormatInt(i, 10)), nil
				}
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		case "!!str", "!!timestamp":
			// A timestamp stays the text it was written as; the typed
			// decode reads it the same way into a string field.
			return n.Value, nil
		default:
			return nil, &Error{File: file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf("YAML tag %s is not allowed", n.Tag),
				Hint: "remove the tag"}
		}
	}
	return nil, &Error{File: file, Line: n.Line, Column: n.Column, Msg: "unsupported YAML node"}
}

// findKey locates key k of the object at ptr; when ptr holds no such key, it
// takes the first occurrence of a key named k in the document (by line, then
// column), so the answer never depends on map order. It returns the key's
// position and the location of its object.
func findKey(positions map[string]pos, ptr, k string) (pos, []string, bool) {
	suffix := "/" + escape(k) + "#key"
	if p, ok := positions[ptr+suffix]; ok {
		return p, splitPointer(ptr), true
	}
	var best pos
	var bestPtr string
	found := false
	for key, p := range positions {
		if !strings.HasSuffix(key, suffix) {
			continue
		}
		if !found || p.line < best.line || (p.line == best.line && p.col < best.col) {
			best, bestPtr, found = p, strings.TrimSuffix(key, suffix), true
		}
	}
	return best, splitPointer(bestPtr), found
}

// splitPointer turns a JSON pointer into its unescaped tokens.
func splitPointer(ptr string) []string {
	if ptr == "" {
		return nil
	}
	toks := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks
}

func escape(s string) string {
	s = strings.ReplaceAll(s, "~", "~0")
	return strings.ReplaceAll(s, "/", "~1")
}

var printer = message.NewPrinter(language.English)

// displayPath renders an instance location as people write it:
// signers[0].roles[1].
func displayPath(loc []string) string {
	if len(loc) == 0 {
		return "top level"
	}
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// leaves collects the most specific validation errors.
func leaves(ve *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	// A property-name error's causes are located at the name, not in the
	// document; the property-name error itself knows the key.
	if _, isName := ve.ErrorKind.(*kind.PropertyNames); len(ve.Causes) == 0 || isName {
		return append(out, ve)
	}
	for _, c := range ve.Causes {
		out = leaves(c, out)
	}
	return out
}

func schemaError(file string, ve *jsonschema.ValidationError, positions map[string]pos) error {
	all := leaves(ve, nil)
	type located struct {
		e    *Error
		path string
		rank int // unknown fields first: a misspelt key also makes a required one "missing"
	}
	var errs []located
	for _, l := range all {
		ptr := ""
		for _, tok := range l.InstanceLocation {
			ptr += "/" + escape(tok)
		}
		p := positions[ptr]
		path := displayPath(l.InstanceLocation)
		e := &Error{File: file, Line: p.line, Column: p.col}
		rank := 2
		switch k := l.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			if kp, ok := positions[ptr+"/"+escape(k.Properties[0])+"#key"]; ok {
				e.Line, e.Column = kp.line, kp.col
			}
			e.Msg = fmt.Sprintf("unknown field %q in %s", k.Properties[0], path)
			e.Hint = fmt.Sprintf("remove %q or correct its spelling; `groundzero` rejects fields it does not understand", k.Properties[0])
			rank = 0
		case *kind.PropertyNames:
			// jsonschema/v6 can hand back a property-name error whose
			// instance location was overwritten by a sibling validated
			// later (map order), so the key is found by name instead.
			if kp, loc, ok := findKey(positions, ptr, k.Property); ok {
				e.Line, e.Column = kp.line, kp.col
				path = displayPath(loc)
			}
			e.Msg = fmt.Sprintf("%s: key %q is not allowed here", path, k.Property)
			e.Hint = "rename the key; see the schema for the allowed form"
		case *kind.Required:
			e.Msg = fmt.Sprintf("%s is missing required field %q", path, k.Missing[0])
			e.Hint = fmt.Sprintf("add %q to %s", k.Missing[0], path)
		case *kind.Type:
			e.Msg = fmt.Sprintf("%s: expected %s, found %s", path, strings.Join(k.Want, " or "), k.Got)
			e.Hint = fmt.Sprintf("change %s to a %s", path, strings.Join(k.Want, " or "))
			rank = 1
		default:
			e.Msg = fmt.Sprintf("%s: %s", path, l.ErrorKind.LocalizedString(printer))
			e.Hint = fmt.Sprintf("correct %s", path)
		}
		errs = append(errs, located{e, path, rank})
	}
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].rank != errs[j].rank {
			return errs[i].rank < errs[j].rank
		}
		if errs[i].e.Line != errs[j].e.Line {
			return errs[i].e.Line < errs[j].e.Line
		}
		return errs[i].e.Column < errs[j].e.Column
	})
	return errs[0].e
}

package strictyaml_test

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/strictyaml"
)

var testSchema = strictyaml.MustCompile("test.schema.json", []byte(`{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["name"],
  "properties": {
    "name": {"type": "string", "pattern": "^[a-z]+$"},
    "count": {"type": "integer", "minimum": 0, "maximum": 10},
    "enabled": {"type": "boolean"},
    "labels": {
      "type": "object",
      "propertyNames": {"pattern": "^[a-z]+$"},
      "additionalProperties": {"type": "string", "pattern": "^[a-z]+$"}
    },
    "items": {
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["id"],
        "properties": {"id": {"type": "string"}, "note": {"type": "string"}}
      }
    }
  }
}`))

type item struct {
	ID   string `yaml:"id"`
	Note string `yaml:"note"`
}

type doc struct {
	Name    string            `yaml:"name"`
	Count   int               `yaml:"count"`
	Enabled bool              `yaml:"enabled"`
	Labels  map[string]string `yaml:"labels"`
	Items   []item            `yaml:"items"`
}

const file = "test.yaml"

func decode(data string) (doc, error) {
	var d doc
	err := strictyaml.Decode(file, []byte(data), testSchema, &d)
	return d, err
}

func decodeErr(t *testing.T, data string) *strictyaml.Error {
	t.Helper()
	_, err := decode(data)
	var se *strictyaml.Error
	if !errors.As(err, &se) {
		t.Fatalf("Decode(%q) = %v, want *strictyaml.Error", data, err)
	}
	if se.File != file {
		t.Errorf("Decode(%q) error file = %q, want %q", data, se.File, file)
	}
	return se
}

func TestDecode(t *testing.T) {
	got, err := decode(`# a comment
name: abc
count: 3
enabled: true
labels: {team: infra}
items:
  - id: one
    note: first
  - id: two
`)
	if err != nil {
		t.Fatalf("Decode(valid) = %v", err)
	}
	want := doc{Name: "abc", Count: 3, Enabled: true, Labels: map[string]string{"team": "infra"},
		Items: []item{{ID: "one", Note: "first"}, {ID: "two"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(valid) = %+v, want %+v", got, want)
	}
}

func TestDecodeAcceptsPlainYAML(t *testing.T) {
	for name, data := range map[string]string{
		"explicit document start": "---\nname: abc\n",
		"document end marker":     "name: abc\n...\n",
		"quoted key":              `"name": abc` + "\n",
		"flow mapping":            "{name: abc, count: 1}\n",
		"explicit str tag":        "name: !!str abc\n",
		"hex int":                 "name: abc\ncount: 0x3\n",
		"whole float as integer":  "name: abc\ncount: 3.0\n",
		"no final newline":        "name: abc",
		"CRLF":                    "name: abc\r\ncount: 2\r\n",
	} {
		if _, err := decode(data); err != nil {
			t.Errorf("Decode(%s) = %v, want nil error", name, err)
		}
	}
}

// The error for an unknown field points at the key, not at its value or the
// enclosing mapping.
func TestUnknownFieldPosition(t *testing.T) {
	for _, tc := range []struct {
		data      string
		line, col int
		field     string
	}{
		{"name: abc\ncolour: red\n", 2, 1, "colour"},
		{"name: abc\nitems:\n  - id: x\n    idd: y\n", 4, 5, "idd"},
		{"name: abc\nitems:\n  - id: x\n  - {id: y,   nte: z}\n", 4, 15, "nte"},
		{"{name: abc,   extra: 1}\n", 1, 15, "extra"},
	} {
		se := decodeErr(t, tc.data)
		if se.Line != tc.line || se.Column != tc.col {
			t.Errorf("Decode(%q) position = %d:%d, want %d:%d (%v)", tc.data, se.Line, se.Column, tc.line, tc.col, se)
		}
		if !strings.Contains(se.Msg, `unknown field "`+tc.field+`"`) || se.Hint == "" {
			t.Errorf("Decode(%q) = %q (hint %q), want unknown field %q and a hint", tc.data, se.Msg, se.Hint, tc.field)
		}
		if want := regexp.MustCompile(`^test\.yaml:\d+:\d+: `); !want.MatchString(se.Error()) {
			t.Errorf("Decode(%q).Error() = %q, want file:line:column prefix", tc.data, se.Error())
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line, col  int
		msg        string
	}{
		{"missing required", "count: 1\n", 1, 1, `missing required field "name"`},
		{"wrong type", "name: abc\ncount: many\n", 2, 8, "expected integer"},
		{"wrong type bool", "name: abc\nenabled: \"true\"\n", 2, 10, "expected boolean"},
		{"yes is not a bool", "name: abc\nenabled: yes\n", 2, 10, "expected boolean"},
		{"pattern", "name: ABC\n", 1, 7, "name"},
		{"maximum", "name: abc\ncount: 11\n", 2, 8, "count"},
		{"fraction", "name: abc\ncount: 1.5\n", 2, 8, "count"},
		{"null", "name: abc\ncount: ~\n", 2, 8, "expected integer"},
		{"nested missing", "name: abc\nitems:\n  - note: x\n", 3, 5, `missing required field "id"`},
		{"top level not a mapping", "- name\n", 1, 1, "expected object"},
	} {
		se := decodeErr(t, tc.data)
		if se.Line != tc.line || se.Column != tc.col {
			t.Errorf("Decode(%s) position = %d:%d, want %d:%d (%v)", tc.name, se.Line, se.Column, tc.line, tc.col, se)
		}
		if !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Decode(%s) = %q, want mention of %q", tc.name, se.Msg, tc.msg)
		}
	}
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int // 0: any line > 0
		msg        string
	}{
		{"second document", "name: abc\n---\nname: def\n", 2, "more than one YAML document"},
		{"second document of scalar", "name: abc\n--- x\n", 2, "more than one YAML document"},
		{"broken second document", "name: abc\n---\n[x\n", 0, ""},
		{"merge key", "name: abc\nitems:\n  - <<: {id: x}\n", 3, "plain strings"},
		{"merge key top level", "<<: {name: abc}\n", 1, "plain strings"},
		{"merge key explicit tag", "name: abc\n!!merge <<: {count: 1}\n", 2, "plain strings"},
		{"anchor", "name: &n abc\n", 1, "anchors"},
		{"anchor on mapping", "name: abc\nlabels: &l {a: b}\n", 2, "anchors"},
		{"alias", "name: &n abc\nitems: [{id: *n}]\n", 1, "anchors"},
		{"custom tag", "name: !secret abc\n", 1, "tag"},
		{"custom global tag", "name: !<tag:example.com,2026:x> abc\n", 1, "tag"},
		{"python tag", "name: !!python/object abc\n", 1, "tag"},
		{"duplicate key", "name: abc\ncount: 1\nname: def\n", 3, "appears twice (first at line 1)"},
		{"duplicate quoted key", "name: abc\n\"name\": def\n", 2, "appears twice"},
		{"duplicate nested key", "name: abc\nlabels: {a: b, a: c}\n", 2, "appears twice"},
		{"complex key", "name: abc\nlabels: {[a]: b}\n", 2, "plain strings"},
		{"mapping key", "? {a: b}\n: c\nname: abc\n", 1, "plain strings"},
		{"syntax", "name: [abc\n", 0, ""},
		{"tab indentation", "name: abc\nitems:\n\t- id: x\n", 3, ""},
	} {
		se := decodeErr(t, tc.data)
		if tc.line > 0 && se.Line != tc.line || se.Line <= 0 {
			t.Errorf("Decode(%s) line = %d, want %d (%v)", tc.name, se.Line, tc.line, se)
		}
		if strings.HasPrefix(tc.name, "merge key") && !strings.Contains(se.Hint, "merge keys (`<<`) are not allowed") {
			t.Errorf("Decode(%s) hint = %q, want it to name merge keys", tc.name, se.Hint)
		}
		if !strings.Contains(se.Msg, tc.msg) || se.Hint == "" {
			t.Errorf("Decode(%s) = %q (hint %q), want mention of %q and a hint", tc.name, se.Msg, se.Hint, tc.msg)
		}
	}
}

// A second document that is empty is still a second document.
func TestRejectsEmptySecondDocument(t *testing.T) {
	for _, data := range []string{
		"name: abc\n---\n",
		"name: abc\n---\n# nothing\n",
		"name: abc\n...\n---\n",
	} {
		if got, err := decode(data); err == nil {
			t.Errorf("Decode(%q) = %+v, nil error, want more than one YAML document", data, got)
		}
	}
}

func TestEmpty(t *testing.T) {
	for _, data := range []string{"", "\n", "   \n\n", "# only a comment\n"} {
		se := decodeErr(t, data)
		if !strings.Contains(se.Msg, "empty") && !strings.Contains(se.Msg, "expected object") {
			t.Errorf("Decode(%q) = %q, want an empty-file error", data, se.Msg)
		}
	}
	se := decodeErr(t, "")
	if se.Msg != "file is empty" || se.Hint == "" {
		t.Errorf("Decode(\"\") = %q (hint %q), want \"file is empty\" with a hint", se.Msg, se.Hint)
	}
	if se.Error() != file+": file is empty" {
		t.Errorf("Decode(\"\").Error() = %q, want %q", se.Error(), file+": file is empty")
	}
}

func TestMaxSize(t *testing.T) {
	// A valid document padded with a comment to just over the limit.
	data := "name: abc\n#" + strings.Repeat("x", strictyaml.MaxSize) + "\n"
	se := decodeErr(t, data)
	if !strings.Contains(se.Msg, "larger than") {
		t.Errorf("Decode(%d bytes) = %q, want a size error", len(data), se.Msg)
	}
	// Exactly at the limit is fine.
	ok := "name: abc\n#" + strings.Repeat("x", strictyaml.MaxSize-len("name: abc\n#\n")) + "\n"
	if len(ok) != strictyaml.MaxSize {
		t.Fatalf("len(ok) = %d, want %d", len(ok), strictyaml.MaxSize)
	}
	if _, err := decode(ok); err != nil {
		t.Errorf("Decode(%d bytes) = %v, want nil error", len(ok), err)
	}
}

// T10: what the schema checks must be what the caller gets. A `!!binary`
// scalar is validated as its base64 text ("aaaa", which matches ^[a-z]+$)
// but decoded into a string field as the bytes that text encodes
// ("i\xa6\x9a"), so a value the schema would refuse reaches the caller.
func TestBinaryTagIsNotAParseDifferential(t *testing.T) {
	for _, data := range []string{
		"name: !!binary aaaa\n",
		"name: abc\nlabels: {team: !!binary aaaa}\n",
	} {
		got, err := decode(data)
		if err != nil {
			continue // refusing the tag outright is fine
		}
		re := regexp.MustCompile(`^[a-z]+$`)
		if !re.MatchString(got.Name) {
			t.Errorf("Decode(%q).Name = %q, nil error: the value violates the schema pattern it was validated against", data, got.Name)
		}
		for k, v := range got.Labels {
			if !re.MatchString(v) {
				t.Errorf("Decode(%q).Labels[%q] = %q, nil error: the value violates the schema pattern it was validated against", data, k, v)
			}
		}
	}
}

// T10: a null map key is validated as the property name "null" (which the
// schema allows) but the typed decode drops the entry, so the caller never
// sees a value the schema accepted.
func TestNullKeyIsNotAParseDifferential(t *testing.T) {
	for _, data := range []string{
		"name: abc\nlabels: {null: x}\n",
		"name: abc\nlabels:\n  null: x\n",
		"name: abc\nlabels:\n  Null: x\n",
	} {
		got, err := decode(data)
		if err != nil {
			continue // refusing null keys is fine
		}
		if len(got.Labels) != 1 {
			t.Errorf("Decode(%q).Labels = %q, nil error, want the one label the schema validated", data, got.Labels)
		}
	}
}

// An error in a property name points at the offending key, not at the top of
// the file.
func TestPropertyNameErrorPosition(t *testing.T) {
	se := decodeErr(t, "name: abc\nlabels:\n  ok: x\n  Bad: y\n")
	if se.Line != 4 {
		t.Errorf("Decode(bad label name) = %v, want line 4, where the key Bad is", se)
	}
}

// Custom tags are refused on collections as on scalars.
func TestCustomTagOnCollection(t *testing.T) {
	for _, data := range []string{
		"name: abc\nlabels: !custom {a: b}\n",
		"name: abc\nitems: !custom [{id: x}]\n",
		"!custom {name: abc}\n",
	} {
		if got, err := decode(data); err == nil {
			t.Errorf("Decode(%q) = %+v, nil error, want the custom tag refused", data, got)
		}
	}
}

func TestMustCompilePanics(t *testing.T) {
	for name, schema := range map[string]string{
		"not JSON":   "{",
		"bad schema": `{"type": 7}`,
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("MustCompile(%s) did not panic", name)
				}
			}()
			strictyaml.MustCompile("bad.json", []byte(schema))
		}()
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    strictyaml.Error
		want string
	}{
		{strictyaml.Error{File: "f", Line: 2, Column: 3, Msg: "m"}, "f:2:3: m"},
		{strictyaml.Error{File: "f", Line: 2, Msg: "m"}, "f:2: m"},
		{strictyaml.Error{File: "f", Msg: "m"}, "f: m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: abc\ncount: 3\nlabels: {a: b}\nitems: [{id: x}]\n"))
	f.Add([]byte("name: abc\n---\nname: def\n"))
	f.Add([]byte("name: &a abc\nitems: [{id: *a}]\n"))
	f.Add([]byte("<<: {name: abc}\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		err := strictyaml.Decode(file, data, testSchema, &d)
		if err != nil {
			var se *strictyaml.Error
			if !errors.As(err, &se) {
				t.Fatalf("Decode(%q) error = %T %v, want *strictyaml.Error", data, err, err)
			}
			return
		}
		if !regexp.MustCompile(`^[a-z]+$`).MatchString(d.Name) || d.Count < 0 || d.Count > 10 {
			t.Fatalf("Decode(%q) = %+v, nil error, outside the schema", data, d)
		}
	})
}

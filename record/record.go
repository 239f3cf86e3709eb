// Package record defines the canonical JSON encoding of groundzero's signed
// records, so that anyone can check a record's bytes, and a signature over
// them, without groundzero.
//
// # Canonical JSON
//
// A record is one JSON object encoded canonically:
//
//   - object keys sorted by their UTF-8 bytes, each key once;
//   - no insignificant white space;
//   - strings in UTF-8, escaping only what JSON requires (the quote, the
//     backslash and control characters, which use \n, \r, \t, \b, \f or
//     \u00XX); no HTML escaping;
//   - numbers are integers between -(2^53-1) and 2^53-1, without a sign
//     for zero, leading zeros, fraction or exponent;
//   - true, false and null as literals;
//   - as a file, exactly one final newline.
//
// These are the bytes Go's encoding/json writes for maps, with HTML escaping
// off. Parse accepts only input that re-encodes to the very same bytes, so a
// verifier and an actor can never read one record two ways (DSSE's "do not
// re-parse"): duplicate keys, reordered keys, extra spaces and alternative
// escapes are all refused.
//
// # Kinds
//
// Every signed record carries "kind": "groundzero.<kind>/v1". A signature
// is over the record's bytes, so a signature made for one kind can never be
// presented as a signature for another. A breaking change to a kind's fields
// makes a new version (v2); readers refuse versions they do not know.
//
// Example, an intent (shown wrapped; the record is one line):
//
//	{"action":"apply","env":"prod","kind":"groundzero.intent/v1",
//	 "nonce":"9b1c…","requester":"alice"}
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"unicode/utf8"
)

// MaxSize bounds one record.
const MaxSize = 1 << 20

// MaxDepth bounds nesting.
const MaxDepth = 32

// Error reports input that is not a canonical record. It never echoes the
// input.
type Error struct{ Reason string }

func (e *Error) Error() string { return "not a canonical record: " + e.Reason }

// Kind returns the kind string for a short name: "intent" gives
// "groundzero.intent/v1".
func Kind(name string) string { return "groundzero." + name + "/v1" }

// Marshal encodes v canonically, without a final newline. v must encode to a
// JSON object whose numbers are integers in the safe range.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	// Round-trip through the generic form: this sorts struct fields as map
	// keys are sorted, and checks the result is canonical.
	out, err := canonicalize(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MarshalFile encodes v canonically with one final newline, as a record file.
func MarshalFile(v any) ([]byte, error) {
	b, err := Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse checks that data is exactly one canonical JSON object (with at most
// one final newline) and decodes it into v, once. Unknown fields are errors
// when v is a struct.
func Parse(data []byte, v any) error {
	if len(data) > MaxSize {
		return &Error{fmt.Sprintf("larger than %d bytes", MaxSize)}
	}
	body := bytes.TrimSuffix(data, []byte("\n"))
	canon, err := canonicalize(body)
	if err != nil {
		return err
	}
	if !bytes.Equal(canon, body) {
		return &Error{"bytes differ from the canonical encoding (key order, spacing or escapes)"}
	}
	// encoding/json matches field names without regard to case, so "Env"
	// would fill the field "env": a second reading of one record. Every key
	// must be a field's exact name.
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer {
		var generic any
		if err := json.Unmarshal(body, &generic); err == nil {
			if err := exactKeys(generic, t.Elem()); err != nil {
				return err
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return &Error{"does not match the record's fields: " + sanitize(err.Error())}
	}
	return nil
}

// ParseFile is Parse for a record file: besides being canonical, data ends
// in its one final newline and holds every field of v, so that v encodes
// (MarshalFile) to exactly data.
func ParseFile(data []byte, v any) error {
	if err := Parse(data, v); err != nil {
		return err
	}
	if out, err := MarshalFile(v); err != nil || !bytes.Equal(out, data) {
		return &Error{"a field is missing, or the final newline"}
	}
	return nil
}

// ParseFileOf reads a record file of one kind into v: at most max bytes,
// ParseFile, its kind field want, and then check (nil for none), which
// validates the fields. Errors give the reason alone, for the caller to name
// the file.
func ParseFileOf(data []byte, max int, want string, v any, check func() error) error {
	if len(data) > max {
		return fmt.Errorf("larger than %d bytes", max)
	}
	if err := ParseFile(data, v); err != nil {
		return err
	}
	if got, _ := KindOf(data); got != want {
		return fmt.Errorf("kind is %q, want %q", got, want)
	}
	if check != nil {
		return check()
	}
	return nil
}

// exactKeys checks that every object key in v names a field of t exactly.
func exactKeys(v any, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // a type error, which decoding reports
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[name] = f.Type
		}
		for k, x := range m {
			ft, ok := fields[k]
			if !ok {
				return &Error{fmt.Sprintf("unknown field %q", truncate(k))}
			}
			if err := exactKeys(x, ft); err != nil {
				return err
			}
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for _, x := range m {
				if err := exactKeys(x, t.Elem()); err != nil {
					return err
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if s, ok := v.([]any); ok {
			for _, x := range s {
				if err := exactKeys(x, t.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sanitize keeps decoder errors from echoing values.
func sanitize(msg string) string {
	if i := strings.Index(msg, "json: unknown field "); i >= 0 {
		return msg[i:]
	}
	if strings.Contains(msg, "cannot unmarshal") {
		if i := strings.Index(msg, " into Go struct field "); i >= 0 {
			return "wrong type for field " + strings.Fields(msg[i+len(" into Go struct field "):])[0]
		}
		return "wrong type"
	}
	return "invalid value"
}

// canonicalize parses JSON strictly (rejecting duplicate keys, non-integer
// numbers and invalid UTF-8) and re-encodes it canonically.
func canonicalize(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, &Error{"invalid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, &Error{"top level is not an object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{"trailing data after the object"}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, &Error{err.Error()}
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

const maxSafe = 1<<53 - 1

func parseValue(dec *json.Decoder, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, &Error{"nested too deeply"}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, &Error{"malformed JSON"}
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, &Error{"malformed JSON"}
				}
				k, ok := kt.(string)
				if !ok {
					return nil, &Error{"malformed JSON"}
				}
				if _, dup := m[k]; dup {
					return nil, &Error{fmt.Sprintf("duplicate key %q", truncate(k))}
				}
				val, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = val
			}
			if _, err := dec.Token(); err != nil {
				return nil, &Error{"malformed JSON"}
			}
			return m, nil
		case '[':
			s := []any{}
			for dec.More() {
				val, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				s = append(s, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, &Error{"malformed JSON"}
			}
			return s, nil
		}
		return nil, &Error{"malformed JSON"}
	case json.Number:
		s := t.String()
		if strings.ContainsAny(s, ".eE") {
			return nil, &Error{"numbers must be integers"}
		}
		var n int64
		if _, err := fmt.Sscan(s, &n); err != nil || n > maxSafe || n < -maxSafe || math.Abs(float64(n)) > maxSafe {
			return nil, &Error{"integer out of range"}
		}
		return t, nil
	case string, bool, nil:
		return t, nil
	}
	return nil, &Error{"malformed JSON"}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// KindOf returns the "kind" field of a canonical record without decoding the
// rest, or an error.
func KindOf(data []byte) (string, error) {
	var k struct {
		Kind string `json:"kind"`
	}
	body := bytes.TrimSuffix(data, []byte("\n"))
	canon, err := canonicalize(body)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(canon, body) {
		return "", &Error{"bytes differ from the canonical encoding"}
	}
	if err := json.Unmarshal(body, &k); err != nil || k.Kind == "" {
		return "", &Error{"no kind field"}
	}
	return k.Kind, nil
}

// ErrKind reports a record of an unexpected kind.
var ErrKind = errors.New("record is of another kind")

// ExpectKind checks a record's kind.
func ExpectKind(data []byte, want string) error {
	got, err := KindOf(data)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %q, want %q", ErrKind, got, want)
	}
	return nil
}

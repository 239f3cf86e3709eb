package main

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	commands["json"] = cmdJSON
}

// json PATH REGEXP checks the last command's standard output, which must be
// exactly one JSON value and nothing else: the value at PATH (object keys and
// array indexes separated by dots; a final @len is an array's or object's
// length), written as compact JSON, must match REGEXP in full. ! json PATH
// checks that PATH is absent.
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if (neg && len(args) != 1) || (!neg && len(args) != 2) {
		ts.Fatalf("usage: json PATH REGEXP | ! json PATH")
	}
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile("stdout")))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("stdout is not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		ts.Fatalf("stdout holds more than one JSON value")
	}
	cur, found := v, true
	for _, seg := range strings.Split(args[0], ".") {
		switch c := cur.(type) {
		case map[string]any:
			if seg == "@len" {
				cur = json.Number(strconv.Itoa(len(c)))
				continue
			}
			cur, found = c[seg]
		case []any:
			if seg == "@len" {
				cur = json.Number(strconv.Itoa(len(c)))
				continue
			}
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				found = false
			} else {
				cur = c[i]
			}
		default:
			found = false
		}
		if !found {
			break
		}
	}
	if neg {
		if found {
			ts.Fatalf("json %s is present", args[0])
		}
		return
	}
	if !found {
		ts.Fatalf("json %s is absent", args[0])
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	ts.Check(enc.Encode(cur))
	got := strings.TrimSpace(buf.String())
	re, err := regexp.Compile("^(?:" + args[1] + ")$")
	ts.Check(err)
	if !re.MatchString(got) {
		ts.Fatalf("json %s = %s, want %s", args[0], got, args[1])
	}
}

package main

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/groundzero/groundzero/internal/s3gateway"
)

// Read-only credentials to the evidence store, as a proxy in front of the
// script's gateway that answers every write with AccessDenied, the way S3
// answers a principal allowed only s3:Get* and s3:List*.
func init() {
	commands["s3readonly"] = cmdS3ReadOnly
}

type readOnlyProxy struct {
	on      atomic.Bool
	refused atomic.Int64
}

var readOnlyProxies sync.Map // *testscript.TestScript → *readOnlyProxy

// s3readonly starts the proxy (after s3gateway) and sets $S3_RO_ENDPOINT;
// `s3readonly on` and `s3readonly off` turn the refusal on and off, and
// `s3readonly refused N` checks how many writes it refused.
func cmdS3ReadOnly(ts *testscript.TestScript, neg bool, args []string) {
	const use = "s3readonly [on|off|refused N] (after s3gateway)"
	v, _ := readOnlyProxies.Load(ts)
	p, _ := v.(*readOnlyProxy)
	switch {
	case len(args) == 0 && p == nil:
		gv, _ := gateways.Load(ts)
		g, _ := gv.(*s3gateway.Gateway)
		if g == nil {
			ts.Fatalf("usage: %s", use)
		}
		target, err := url.Parse(g.Endpoint)
		ts.Check(err)
		p = &readOnlyProxy{}
		rp := httputil.NewSingleHostReverseProxy(target)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p.on.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead {
				p.refused.Add(1)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`))
				return
			}
			rp.ServeHTTP(w, r)
		})}
		go srv.Serve(l)
		ts.Defer(func() { srv.Close() })
		readOnlyProxies.Store(ts, p)
		ts.Setenv("S3_RO_ENDPOINT", "http://"+l.Addr().String())
	case p == nil:
		ts.Fatalf("usage: %s", use)
	case len(args) == 1 && args[0] == "on":
		p.on.Store(true)
	case len(args) == 1 && args[0] == "off":
		p.on.Store(false)
	case len(args) == 2 && args[0] == "refused":
		want, err := strconv.ParseInt(args[1], 10, 64)
		ts.Check(err)
		if got := p.refused.Load(); (got == want) == neg {
			ts.Fatalf("s3readonly refused %d writes, want %d", got, want)
		}
	default:
		ts.Fatalf("usage: %s", use)
	}
}

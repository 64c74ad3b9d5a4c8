package main

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestAdvertised(t *testing.T) {
	listen := func(addr string) net.Listener {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	lo := listen("127.0.0.1:0")
	if got := advertised(lo, ""); got != lo.Addr().String() {
		t.Errorf("loopback listener advertised as %s", got)
	}
	_, port, _ := net.SplitHostPort(lo.Addr().String())
	if got := advertised(lo, "node-7.strata"); got != "node-7.strata:"+port {
		t.Errorf("with a host: %s", got)
	}
	all := listen(":0")
	host, _ := os.Hostname()
	if got := advertised(all, ""); !strings.HasPrefix(got, host+":") {
		t.Errorf("listener on all interfaces advertised as %s, want the host name %s", got, host)
	}
}

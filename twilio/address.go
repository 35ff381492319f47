package twilio

import (
	"net/netip"
	"strings"
)

// cgnat is the shared address space of RFC 6598, not routable on the
// internet, which netip's IsPrivate does not cover.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether a is a unicast address on the public
// internet: not loopback, private, link-local (which includes cloud
// metadata endpoints), multicast or unspecified.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a) &&
		!(a.Is4() && a.As4()[0] == 0)
}

// isLocalHost reports whether host (a name or an IP literal, without port)
// is on this machine or a private network: a non-public IP, localhost, or a
// single-label name such as a container's service name, which no public
// DNS name is.
func isLocalHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return !publicAddr(a)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || !strings.Contains(host, ".") {
		return true
	}
	// No top-level domain starts with a digit: such a host is an address
	// in a notation netip does not parse (0x7f.0.0.1, 127.1) but a C
	// resolver might.
	last := host[strings.LastIndexByte(host, '.')+1:]
	return last == "" || '0' <= last[0] && last[0] <= '9'
}

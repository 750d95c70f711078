// CoreDNS with only the plugins cluster/addons.yaml's Corefile uses: the release's own main links every plugin
// (cloud DNS providers, tracing exporters, ...), which took 17 minutes to build here for nothing the cluster runs.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func init() {
	// The order in which the plugins handle a query: plugin.cfg's order of the release, restricted to these.
	dnsserver.Directives = []string{"reload", "bind", "ready", "health", "prometheus", "errors", "loadbalance", "cache",
		"kubernetes", "loop"}
}

func main() {
	coremain.Run()
}

// Command pulumi-tfgen-docker writes the provider's Pulumi schema (`pulumi-tfgen-docker schema --out DIR`), which
// toolchain/pulumi.sh embeds into the plugin as schema-embed.json, as pulumi-docker's own build does.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	"modelship.local/toolchain/pulumi/docker/provider"
)

func main() {
	tfgen.Main("docker", provider.Version, provider.Provider())
}

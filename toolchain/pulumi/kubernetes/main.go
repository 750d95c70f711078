// Command pulumi-resource-kubernetes serves the Kubernetes provider with the schema and Terraform mapping that
// toolchain/pulumi.sh generates next to this file (the upstream main embeds the same files under the same names).
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}

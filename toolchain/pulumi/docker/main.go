// Command pulumi-resource-docker serves the Terraform-bridged Docker provider (the resource plugin of
// pulumi-docker 5.2.0) with the schema that toolchain/pulumi.sh generates next to this file.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"modelship.local/toolchain/pulumi/docker/provider"
)

//go:embed schema.json
var schema []byte

func main() {
	tfbridge.Main("docker", provider.Version, provider.Provider(), schema)
}

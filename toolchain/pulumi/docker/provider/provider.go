// Package provider is the Terraform-bridge mapping of pulumi-docker 5.2.0, written here because the Go module
// proxy serves no github.com/pulumi/pulumi-docker/provider module: same package name, tokens, renames,
// delete-before-replace and provider configuration, so the PyPI SDK pulumi-docker==5.2.0 talks to this plugin as
// to its own. The upstream's native `docker.Image` (a build resource) is not here: the program builds with
// pulumi-docker-build.
package provider

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	bridgetokens "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

// Version is set with -ldflags -X to the PyPI SDK version the plugin stands in for.
var Version = "0.0.0-dev"

const (
	pkg = "docker"
	mod = "index"
)

func token(name string) tokens.Type { return tfbridge.MakeResource(pkg, mod, name) }

// Provider maps the Terraform docker provider's SDKv2 half onto Pulumi tokens.
func Provider() tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(shim.NewProvider(Version)),
		Name:        pkg,
		Version:     Version,
		Description: "A Pulumi package for interacting with Docker in Pulumi programs",
		Keywords:    []string{"pulumi", "docker"},
		License:     "Apache-2.0",
		GitHubOrg:   "kreuzwerker",
		// The copy toolchain/pulumi.sh makes of the Terraform module (docs for descriptions come from there).
		UpstreamRepoPath: "./upstream",
		Config: map[string]*tfbridge.SchemaInfo{
			// The Terraform provider falls back to the local socket itself; DOCKER_HOST wins when set.
			"host": {Default: &tfbridge.DefaultInfo{EnvVars: []string{"DOCKER_HOST"}}},
			// A block that may repeat, named in the singular as the SDK has it.
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_config": {Tok: token("ServiceConfig")},
			"docker_container": {
				Tok: token("Container"),
				// A container's name is unique on the host: a replacement must free it first.
				DeleteBeforeReplace: true,
				Fields: map[string]*tfbridge.SchemaInfo{
					// Lists that the SDK names in the singular.
					"command":           {Name: "command"},
					"networks_advanced": {Name: "networksAdvanced"},
				},
			},
			"docker_image": {Tok: token("RemoteImage"), Fields: map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}}},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_image": {Tok: tfbridge.MakeDataSource(pkg, mod, "getRemoteImage")},
		},
	}
	// Everything not named above gets the standard token: docker_network -> docker:index/network:Network.
	info.MustComputeTokens(bridgetokens.SingleModule("docker_", mod, bridgetokens.MakeStandard(pkg)))
	info.SetAutonaming(255, "-")
	return info
}

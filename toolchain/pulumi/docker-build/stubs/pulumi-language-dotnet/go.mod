// Stand-in for the one pulumi-dotnet package the docker-build provider imports: the real module is not served by
// the Go module proxy. It only feeds SDK code generation metadata.
module github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3

go 1.26

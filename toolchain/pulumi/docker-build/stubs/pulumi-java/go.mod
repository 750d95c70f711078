// Stand-in for the one pulumi-java package the docker-build provider imports (docs/toolchain.md): the real
// module is not served by the Go module proxy. It only feeds SDK code generation metadata.
module github.com/pulumi/pulumi-java

go 1.26

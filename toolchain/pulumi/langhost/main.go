// Command pulumi-language-python is modelship's own Python language host for the Pulumi engine.
//
// Why ours: the Go module proxy this project can reach does not serve Pulumi's language host module
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) at any version, so it cannot be built
// here. This host implements the engine's LanguageRuntime service on top of the pieces that *are* served in
// github.com/pulumi/pulumi/sdk/v3: the virtualenv/toolchain handling (python/toolchain), and the program
// executor script pulumi-language-python-exec that must sit next to this binary. Features the project does
// not use (code generation, packing, templates, debugging) answer Unimplemented, which the engine tolerates.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The executor exits with this code after it has already shown the user an actionable error.
const exitAfterUserMessage = 32

func main() {
	logging.InitLogging(false, 0, false)
	self, err := os.Executable()
	if err != nil {
		cmdutil.Exit(fmt.Errorf("locating this executable: %w", err))
	}
	executor := filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	if _, err := os.Stat(executor); err != nil {
		cmdutil.Exit(fmt.Errorf("missing executor %s (toolchain/pulumi.sh installs it next to this host): %w",
			executor, err))
	}
	var engineAddress string
	if len(os.Args) > 1 {
		// The engine passes its address as the last argument.
		engineAddress = os.Args[len(os.Args)-1]
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancelChannel := make(chan bool)
	go func() {
		<-ctx.Done()
		close(cancelChannel)
	}()
	if engineAddress != "" {
		// Exit when the engine goes away instead of lingering as an orphan.
		if err := rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, cancel); err != nil {
			cmdutil.Exit(fmt.Errorf("starting the engine health check: %w", err))
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancelChannel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{executor: executor, engineAddress: engineAddress})
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("starting the language host RPC server: %w", err))
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC server stopped: %w", err))
	}
}

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	executor      string
	engineAddress string
}

// python resolves the interpreter for a program from its Pulumi.yaml runtime options (virtualenv, toolchain).
func python(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	opts := toolchain.PythonOptions{
		Root:       info.GetRootDirectory(),
		ProgramDir: info.GetProgramDirectory(),
		Toolchain:  toolchain.Pip,
	}
	for name, value := range info.GetOptions().AsMap() {
		text, _ := value.(string)
		switch name {
		case "virtualenv":
			opts.Virtualenv = text
		case "toolchain":
			switch text {
			case "pip", "":
			case "uv":
				opts.Toolchain = toolchain.Uv
			case "poetry":
				opts.Toolchain = toolchain.Poetry
			default:
				return nil, fmt.Errorf("unknown python toolchain %q in Pulumi.yaml", text)
			}
		}
	}
	return toolchain.ResolveToolchain(opts)
}

// pythonWithVenv is python for running code: a configured virtualenv must exist.
func pythonWithVenv(ctx context.Context, info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	tc, err := python(info)
	if err != nil {
		return nil, err
	}
	return tc, tc.ValidateVenv(ctx)
}

// withEnv gives cmd the environment it would inherit plus extra, keeping a virtualenv activation it already has.
func withEnv(cmd *exec.Cmd, extra ...string) {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, extra...)
}

func (h *host) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

// pluginScan lists the resource plugins of the installed Pulumi provider SDKs: each ships a
// pulumi-plugin.json naming the plugin and the exact version it needs.
const pluginScan = `
import importlib.metadata as md, json
found = []
for dist in md.distributions():
    for f in dist.files or ():
        if f.name == "pulumi-plugin.json":
            meta = json.loads(f.read_text())
            if meta.get("resource"):
                found.append({"name": meta.get("name") or dist.metadata["Name"],
                              "version": meta.get("version") or dist.version,
                              "server": meta.get("server") or ""})
print(json.dumps(found))
`

func (h *host) GetRequiredPlugins(
	ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	tc, err := pythonWithVenv(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", pluginScan)
	if err != nil {
		return nil, err
	}
	cmd.Dir = req.GetInfo().GetProgramDirectory()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the Pulumi provider packages installed for %s: %w%s",
			cmd.Path, err, stderrOf(err))
	}
	var found []struct{ Name, Version, Server string }
	if err := json.Unmarshal(out, &found); err != nil {
		return nil, fmt.Errorf("reading the plugin list printed by %s: %w", cmd.Path, err)
	}
	plugins := make([]*pulumirpc.PluginDependency, 0, len(found))
	for _, p := range found {
		v := p.Version
		if v != "" && !strings.HasPrefix(v, "v") {
			v = "v" + v
		}
		plugins = append(plugins, &pulumirpc.PluginDependency{
			Name: p.Name, Kind: "resource", Version: v, Server: p.Server,
		})
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

func stderrOf(err error) string {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && len(exitErr.Stderr) > 0 {
		return "\n" + string(exitErr.Stderr)
	}
	return ""
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	tc, err := pythonWithVenv(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	args := []string{"-u", h.executor}
	flag := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	flag("monitor", req.GetMonitorAddress())
	flag("engine", h.engineAddress)
	flag("project", req.GetProject())
	flag("stack", req.GetStack())
	flag("pwd", req.GetPwd())
	flag("dry_run", strconv.FormatBool(req.GetDryRun()))
	flag("parallel", strconv.Itoa(int(req.GetParallel())))
	flag("organization", req.GetOrganization())
	flag("root_directory", req.GetInfo().GetRootDirectory())
	program := req.GetInfo().GetEntryPoint()
	if program == "" {
		program = "."
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("serializing the stack configuration: %w", err)
	}
	secretKeys, err := json.Marshal(req.GetConfigSecretKeys())
	if err != nil {
		return nil, fmt.Errorf("serializing the secret configuration keys: %w", err)
	}
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	withEnv(cmd, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys))
	cmd.Dir = req.GetInfo().GetProgramDirectory()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	// Python may die without flushing; make sure the engine sees what it printed.
	_ = os.Stdout.Sync()
	_ = os.Stderr.Sync()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == exitAfterUserMessage:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with non-zero exit code: %d",
			exitErr.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run %s: %v", cmd.Path, err)}, nil
	}
}

// RunPlugin runs a plugin written in Python, e.g. a policy pack: `python <dir>` with the engine's arguments.
func (h *host) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	tc, err := pythonWithVenv(server.Context(), req.GetInfo())
	if err != nil {
		return err
	}
	program := req.GetInfo().GetProgramDirectory()
	if program == "" {
		program = req.GetProgram()
	}
	cmd, err := tc.Command(server.Context(), append([]string{"-u", program}, req.GetArgs()...)...)
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	// The engine hands over the complete environment; keep the virtualenv activation on top of it.
	env := cmd.Env
	cmd.Env = req.GetEnv()
	if env != nil {
		cmd.Env = append(cmd.Env, activation(env)...)
	}
	cmd.Dir = req.GetPwd()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return server.Send(&pulumirpc.RunPluginResponse{
				Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(exitErr.ExitCode())},
			})
		}
		return fmt.Errorf("could not run python plugin %s: %w", program, err)
	}
	return closer.Close()
}

// activation picks the variables a virtualenv activation sets out of a full environment.
func activation(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "VIRTUAL_ENV=") {
			out = append(out, kv)
		}
	}
	return out
}

func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	// Creates the virtualenv when it is missing, so no pythonWithVenv here.
	tc, err := python(req.GetInfo())
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()
	dir := req.GetInfo().GetProgramDirectory()
	if err := tc.InstallDependencies(server.Context(), dir, req.GetUseLanguageVersionTools(), true,
		stdout, stderr); err != nil {
		return err
	}
	return closer.Close()
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, err := pythonWithVenv(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{Executable: info.PythonExecutable, Version: info.PythonVersion.String()}, nil
}

func (h *host) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, err := pythonWithVenv(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	pkgs, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	deps := make([]*pulumirpc.DependencyInfo, 0, len(pkgs))
	for _, p := range pkgs {
		deps = append(deps, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

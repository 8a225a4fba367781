// Command dcon runs the Data Connector service and talks to it.
//
//	dcon serve       run the service (embedded store under ./dcon-data, API on 127.0.0.1:8080)
//	dcon listen      run a receiver that prints the events it gets and checks their signatures
//	dcon projects    list, get, create, update and delete projects
//	dcon devices     list, get, create, update and delete (emulated) devices
//	dcon connectors  manage data connectors: also metrics, sync, enable, disable, rotate-secret
//	dcon keys        list and rotate the keys that sign DT-Asymmetric-Signature
//	dcon login       keep a service account key (credentials file) for the other commands
//	dcon publish     publish one event for a device
//	dcon emulate     run emulated sensors that publish realistic events at a chosen rate
//	dcon bench       measure dcon end to end against the raw ceiling
//	dcon version     print the version
//
// The client commands talk to a running server: --server (DCON_SERVER),
// default http://127.0.0.1:8080.
//
// Every flag can also be set with an environment variable: --data is DCON_DATA,
// --ca-file is DCON_CA_FILE, and so on. Flags win over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line was wrong
)

// usageError is an error in the command line; its message says what to do.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the service", runServe},
		{"listen", "run a receiver that prints the events it gets", runListen},
		{"projects", "list, create, update and delete projects", projectsNoun().run},
		{"devices", "list, create, update and delete a project's emulated devices", devicesNoun().run},
		{"connectors", "manage a project's data connectors, their metrics and sync", connectorsNoun().run},
		{"keys", "show and rotate the keys that sign DT-Asymmetric-Signature", keysNoun().run},
		{"login", "keep a service account key for the other commands", runLogin},
		{"publish", "publish one event for a device", runPublish},
		{"emulate", "emulate sensors publishing events at a steady rate", runEmulate},
		{"bench", "measure dcon end to end against the raw ceiling (starts its own server)", runBench},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "dcon", version)
			return err
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		name := commandLabel(c.name, args[1:])
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "dcon %s: %v\nRun 'dcon %s --help' for usage.\n", name, err, name)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "dcon %s: %v\n", name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "dcon: unknown command %q\nRun 'dcon help' for the list of commands.\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "dcon forwards sensor events to the HTTPS endpoints of data connectors, at least once, for 12 hours.")
	fmt.Fprintln(w, "\nUsage: dcon <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'dcon <command> --help' for a command's flags. Each flag --x-y can also be set as DCON_X_Y.")
	fmt.Fprintln(w, "The client commands talk to the server at --server (DCON_SERVER, default http://127.0.0.1:8080).")
}

// newFlagSet returns a flag set whose errors and help go to stderr and are
// returned, not fatal.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dcon %s [flags]\n\n%s\n\nFlags (each also as the environment variable shown):\n", name, synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			arg, usage := flag.UnquoteUsage(f)
			if arg != "" {
				arg = " " + arg
			}
			if f.DefValue != "" && f.DefValue != "false" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			if env := flagEnv(fs, f); env != "" {
				fmt.Fprintf(stderr, "  --%s%s  [%s]\n      %s\n", f.Name, arg, env, usage)
			} else {
				fmt.Fprintf(stderr, "  --%s%s\n      %s\n", f.Name, arg, usage)
			}
		})
	}
	return fs
}

// parseFlags sets flags from their DCON_* environment variables, then from args.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := flagEnv(fs, f)
		if v, ok := os.LookupEnv(env); ok && env != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = usagef("%s=%q: %v", env, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// flagEnv is the environment variable that sets f of fs, or "" for the
// flags that have none: bench's --nats switch would read DCON_NATS, which
// holds serve's server URLs.
func flagEnv(fs *flag.FlagSet, f *flag.Flag) string {
	if fs.Name() == "bench" && f.Name == "nats" {
		return ""
	}
	return envName(f.Name)
}

func envName(flagName string) string {
	return "DCON_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

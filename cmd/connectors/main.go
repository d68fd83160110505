// Command connectors is the single binary of Connectors. Each component is a
// subcommand; this package only wires options to packages and turns their
// result into an exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/connectors-io/connectors/internal/devenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := readEnvironment()
	err := startPprof(ctx, env.pprofAddr)
	if err == nil {
		err = newRootCommand(env).ExecuteContext(ctx)
	}
	stop()
	var code exitCode
	var user *devenv.UserError
	switch {
	case err == nil:
	case errors.As(err, &code):
		os.Exit(int(code)) // the workload's own exit status
	case errors.As(err, &user):
		fmt.Fprintln(os.Stderr, "connectors:", user.Message)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "connectors:", err)
		os.Exit(1)
	}
}

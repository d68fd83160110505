// Command realnode runs the test bed's real single-node cluster
// (internal/realnode) from the command line; hack/realnode.sh builds and
// runs it.
//
//	realnode [flags] up        build the images if missing, start the node, wait for Ready
//	realnode [flags] down      stop everything and leave the host as it was
//	realnode [flags] purge     down, then remove the state (PKI, etcd data)
//	realnode [flags] status    the daemons and their pids
//	realnode [flags] env       shell variables naming the node (its IP, kubelet root, CA, kubeconfig)
//	realnode [flags] images    (re)build the local images
//	realnode [flags] import F  load the images of tarball F into the node (make image)
//	realnode [flags] kubectl … kubectl inside the node's namespace, as admin
//	realnode [flags] exec CMD… a command inside the node's namespace
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/connectors-io/connectors/internal/localcluster"
	"github.com/connectors-io/connectors/internal/realnode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("realnode", flag.ContinueOnError)
	root, _ := os.Getwd()
	opts := realnode.Options{Log: os.Stderr}
	fs.StringVar(&opts.Dir, "dir", envOr("REALNODE_DIR", realnode.DefaultDir), "state directory ($REALNODE_DIR)")
	fs.StringVar(&opts.NodeBins, "node-bins", envOr("CONNECTORS_NODE_BINS", filepath.Join(root, "bin", "node", localcluster.KubeVersion)), "node binaries (make node-bins; $CONNECTORS_NODE_BINS)")
	fs.StringVar(&opts.TestBins, "test-bins", localcluster.BinsDir("", root), "etcd, kube-apiserver and kubectl (make test-bins; $CONNECTORS_TEST_BINS)")
	fs.BoolVar(&opts.Containerd2, "containerd2", os.Getenv("CONNECTORS_CONTAINERD") == "2", "containerd v2 and runc from the node binaries ($CONNECTORS_CONTAINERD=2)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: realnode [flags] up|down|purge|status|env|images|import FILE|kubectl ARGS|exec CMD")
		return 2
	}
	n, err := realnode.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	verb, rest := fs.Arg(0), fs.Args()[1:]
	switch verb {
	case "up":
		if _, err := os.Stat(filepath.Join(n.Dir(), "images")); err != nil {
			err = n.BuildImages()
			if err != nil {
				return fail(err)
			}
		}
		return fail(n.Up(ctx))
	case "down":
		return fail(n.Down(ctx))
	case "purge":
		return fail(n.Purge(ctx))
	case "images":
		return fail(n.BuildImages())
	case "import":
		if len(rest) != 1 {
			fmt.Fprintln(os.Stderr, "usage: realnode import IMAGE.tar")
			return 2
		}
		if !n.Running("containerd") {
			return fail(errors.New("realnode: the node is not up (realnode up)"))
		}
		return fail(n.ImportImage(ctx, rest[0]))
	case "status":
		st := n.Status()
		names := make([]string, 0, len(st))
		for name := range st {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if st[name] == 0 {
				fmt.Printf("%-24s stopped\n", name)
			} else {
				fmt.Printf("%-24s running (pid %d)\n", name, st[name])
			}
		}
		return 0
	case "env":
		// Shell-quoted, for eval "$(realnode env)" (hack/demo.sh).
		for _, kv := range [][2]string{
			{"REALNODE_NODE_IP", n.NodeIP()}, {"REALNODE_KUBELET_ROOT", n.KubeletRoot()},
			{"REALNODE_CA_FILE", n.CAFile()}, {"REALNODE_KUBECONFIG", n.Kubeconfig()},
		} {
			fmt.Printf("%s=%s\n", kv[0], shellQuote(kv[1]))
		}
		return 0
	case "kubectl":
		return passthrough(n.Command(ctx, "kubectl", rest...))
	case "exec":
		if len(rest) == 0 {
			fmt.Fprintln(os.Stderr, "usage: realnode exec CMD [ARGS...]")
			return 2
		}
		return passthrough(n.Command(ctx, rest[0], rest[1:]...))
	default:
		fmt.Fprintf(os.Stderr, "realnode: unknown verb %q: use up, down, purge, status, env, images, import, kubectl or exec\n", verb)
		return 2
	}
}

func passthrough(cmd *exec.Cmd) int {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
}

func fail(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

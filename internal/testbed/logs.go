package testbed

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// LogCapture records the log lines of the components a test runs and the
// secrets (tokens, Secret values, rendered contents) that must never
// appear in them; Check fails when one does.
type LogCapture struct {
	mu      sync.Mutex
	lines   bytes.Buffer
	secrets []string
}

// Logger returns a logger (all verbosities) writing into the capture.
func (c *LogCapture) Logger(name string) logr.Logger {
	return funcr.New(func(prefix, args string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		fmt.Fprintf(&c.lines, "%s %s\n", prefix, args)
	}, funcr.Options{Verbosity: 10}).WithName(name)
}

// Write records output of a process (its stdout and stderr), so that a
// capture is also an io.Writer for exec.Cmd.
func (c *LogCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines.Write(p)
}

// Secret registers a value that no log line may contain (values shorter
// than 8 bytes are ignored: they would match by chance).
func (c *LogCapture) Secret(s string) {
	s = strings.TrimSpace(s)
	if len(s) < 8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets = append(c.secrets, s)
}

// Rendered registers rendered files (a kubeconfig, a token file) and the
// lines of them that carry the token or the proxy URL.
func (c *LogCapture) Rendered(files map[string]string) {
	for _, content := range files {
		c.Secret(content)
		for _, line := range strings.Split(content, "\n") {
			if strings.Contains(line, "proxy-url") || strings.Contains(line, "certificate-authority-data") {
				c.Secret(strings.TrimSpace(line))
			}
		}
	}
}

// Text returns what was logged so far.
func (c *LogCapture) Text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines.String()
}

// Secrets returns how many secrets are registered.
func (c *LogCapture) Secrets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.secrets)
}

// Check returns an error when a secret was logged; it names the secret by
// number only, so that its message does not leak it either.
func (c *LogCapture) Check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := c.lines.String()
	for i, s := range c.secrets {
		if strings.Contains(text, s) {
			return fmt.Errorf("log capture: secret #%d (a token or rendered content) appears in the logs", i)
		}
	}
	return nil
}

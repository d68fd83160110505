package testbed

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// LogCapture records the log lines of the components a test runs and the
// secrets (tokens, Secret values, rendered contents) that must never
// appear in them; Check fails when one does, and also on anything shaped
// like a token or a private key, registered or not.
//
// A capture may have children (Child): each keeps the lines logged into it
// apart, for the test that reads them, while the parent's Text and Check
// cover them too, so that one capture of a package sees every component of
// every test.
type LogCapture struct {
	mu       sync.Mutex
	lines    bytes.Buffer
	secrets  []string
	known    map[string]bool // secrets, to register each once
	parent   *LogCapture
	children []*LogCapture
}

// Child returns a capture of its own whose lines and secrets are also the
// parent's: c.Text and c.Check include them.
func (c *LogCapture) Child() *LogCapture {
	child := &LogCapture{parent: c}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.children = append(c.children, child)
	return child
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

// Secret registers a value that no log line may contain, as it is or
// base64-encoded (values shorter than 8 bytes are ignored: they would
// match by chance). A child's secrets are its parent's too.
func (c *LogCapture) Secret(s string) {
	s = strings.TrimSpace(s)
	if len(s) < 8 {
		return
	}
	for at := c; at != nil; at = at.parent {
		at.register(s)
	}
}

func (c *LogCapture) register(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known[s] {
		return
	}
	if c.known == nil {
		c.known = map[string]bool{}
	}
	c.known[s] = true
	c.secrets = append(c.secrets, s)
}

// Rendered registers rendered files (a kubeconfig, a token file) and the
// lines of them that carry the token, a key or the proxy URL.
func (c *LogCapture) Rendered(files map[string]string) {
	for _, content := range files {
		c.Secret(content)
		for _, line := range strings.Split(content, "\n") {
			if strings.Contains(line, "proxy-url") || strings.Contains(line, "certificate-authority-data") || strings.Contains(line, "client-key-data") {
				c.Secret(strings.TrimSpace(line))
			}
		}
	}
}

// Text returns what was logged so far, the children's lines included.
func (c *LogCapture) Text() string {
	var b strings.Builder
	for _, t := range c.texts() {
		b.WriteString(t)
	}
	return b.String()
}

// texts returns the capture's own lines and those of each descendant, one
// string each (a child's lines never interleave with another's).
func (c *LogCapture) texts() []string {
	c.mu.Lock()
	out := []string{c.lines.String()}
	children := append([]*LogCapture(nil), c.children...)
	c.mu.Unlock()
	for _, child := range children {
		out = append(out, child.texts()...)
	}
	return out
}

// Secrets returns how many secrets are registered (the children's
// included).
func (c *LogCapture) Secrets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.secrets)
}

var (
	// jwtShape matches a JWT: a base64url JSON header ("{\"" is eyJ), a
	// payload and a signature, too long to occur by chance.
	jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}`)
	// pemKeyShape matches the header of a PEM private key of any kind
	// (PKCS#8, RSA, EC, ENCRYPTED, OPENSSH).
	pemKeyShape = regexp.MustCompile(`-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----`)
	// base64PEMShape matches base64 of "-----BEGIN " and what follows (a
	// kubeconfig's client-key-data, a Secret's data in JSON); Check decodes
	// it to see whether a private key follows.
	base64PEMShape = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]{30,}`)
	// logKey matches a log key before its value: "key"= (logr's text) or
	// "key": (JSON).
	logKey = regexp.MustCompile(`"([A-Za-z][A-Za-z0-9_.-]*)"\s*[=:]`)
	// loggerField is the logger name of a JSON line (zap, slog).
	loggerField = regexp.MustCompile(`"logger"\s*:\s*"([^"]{1,80})"`)
	// funcrPrefix is the logger name that starts a line of Logger.
	funcrPrefix = regexp.MustCompile(`^([A-Za-z0-9_./-]{1,80}) "level"=`)
)

// maxFindings bounds the findings an error describes.
const maxFindings = 5

// Check returns an error when a registered secret, a JWT or a private key
// (PEM, or PEM base64-encoded) appears in the logs. It describes each
// finding by its kind, the line number, the component that logged it and
// the log key before it, never by its value, so that its message does not
// leak it either.
func (c *LogCapture) Check() error {
	c.mu.Lock()
	secrets := append([]string(nil), c.secrets...)
	c.mu.Unlock()
	var found []string
	n := 0
	note := func(kind, text string, at int) {
		n++
		if len(found) < maxFindings {
			found = append(found, kind+" "+where(text, at))
		}
	}
	for _, text := range c.texts() {
		for i, s := range secrets {
			for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s))} {
				if at := strings.Index(text, form); at >= 0 {
					note(fmt.Sprintf("registered secret #%d (a token, a Secret value or rendered content)", i), text, at)
					break
				}
			}
		}
		for _, m := range jwtShape.FindAllStringIndex(text, -1) {
			note("a JWT", text, m[0])
		}
		for _, m := range pemKeyShape.FindAllStringIndex(text, -1) {
			note("a PEM private key", text, m[0])
		}
		for _, m := range base64PEMShape.FindAllStringIndex(text, -1) {
			encoded := text[m[0]:m[1]]
			encoded = encoded[:len(encoded)/4*4]
			if decoded, err := base64.StdEncoding.DecodeString(encoded); err == nil && pemKeyShape.Match(decoded) {
				note("a base64-encoded PEM private key", text, m[0])
			}
		}
	}
	if n == 0 {
		return nil
	}
	more := ""
	if n > len(found) {
		more = fmt.Sprintf("; and %d more", n-len(found))
	}
	return fmt.Errorf("log capture: %d secrets appear in the logs: %s%s", n, strings.Join(found, "; "), more)
}

// where describes the position at of text by its line number, the
// component that logged the line and the key before at, when they can be
// told.
func where(text string, at int) string {
	start := strings.LastIndexByte(text[:at], '\n') + 1
	line := text[start:]
	if end := strings.IndexByte(line, '\n'); end >= 0 {
		line = line[:end]
	}
	desc := fmt.Sprintf("on line %d", strings.Count(text[:start], "\n")+1)
	var parts []string
	if m := loggerField.FindStringSubmatch(line); m != nil {
		parts = append(parts, "logger "+m[1])
	} else if m := funcrPrefix.FindStringSubmatch(line); m != nil {
		parts = append(parts, "logger "+m[1])
	}
	if keys := logKey.FindAllStringSubmatch(text[start:at], -1); keys != nil {
		parts = append(parts, "key "+keys[len(keys)-1][1])
	}
	if len(parts) > 0 {
		desc += " (" + strings.Join(parts, ", ") + ")"
	}
	return desc
}

package gateway_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/connectors-io/connectors/gateway"
)

func readState(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range []string{gateway.CACertFileName, gateway.CAKeyFileName, gateway.SharedKeyFileName} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

func TestInitFilesWritesAUsableCAAndSharedKeyOnceAndKeepsThemAfterwards(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	written, err := gateway.InitFiles(gateway.InitOptions{Dir: dir, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{gateway.CAKeyFileName, gateway.CACertFileName, gateway.SharedKeyFileName}; !slices.Equal(written, want) {
		t.Fatalf("written %v, want %v", written, want)
	}
	first := readState(t, dir)
	if _, err := gateway.ParseCA(first[gateway.CACertFileName], first[gateway.CAKeyFileName]); err != nil {
		t.Fatalf("the written CA does not parse: %v", err)
	}
	if n := len(first[gateway.SharedKeyFileName]); n != 32 {
		t.Fatalf("shared key of %d bytes, want 32", n)
	}
	for name, mode := range map[string]os.FileMode{gateway.CAKeyFileName: 0o600, gateway.SharedKeyFileName: 0o600, gateway.CACertFileName: 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v, %v; want mode 0700", st.Mode().Perm(), err)
	}

	written, err = gateway.InitFiles(gateway.InitOptions{Dir: dir, UID: -1, GID: -1})
	if err != nil || len(written) != 0 {
		t.Fatalf("second run wrote %v, %v; want nothing", written, err)
	}
	for name, b := range readState(t, dir) {
		if !bytes.Equal(b, first[name]) {
			t.Errorf("%s changed on the second run", name)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("state directory holds %d entries, want 3 (no temporary files left)", len(entries))
	}
}

func TestInitFilesRefusesUnusableOrHalfStateAndReplacesNothing(t *testing.T) {
	cases := map[string]struct {
		remove, corrupt string
		want            string
	}{
		"a certificate without its key":  {remove: gateway.CAKeyFileName, want: "only one of"},
		"a key without its certificate":  {remove: gateway.CACertFileName, want: "only one of"},
		"a CA that does not parse":       {corrupt: gateway.CACertFileName, want: "do not hold a usable CA"},
		"a shared key that is too short": {corrupt: gateway.SharedKeyFileName, want: "at least 32 are needed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := gateway.InitFiles(gateway.InitOptions{Dir: dir, UID: -1, GID: -1}); err != nil {
				t.Fatal(err)
			}
			if tc.remove != "" {
				if err := os.Remove(filepath.Join(dir, tc.remove)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.corrupt != "" {
				if err := os.WriteFile(filepath.Join(dir, tc.corrupt), []byte("short"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadDir(dir)
			written, err := gateway.InitFiles(gateway.InitOptions{Dir: dir, UID: -1, GID: -1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if len(written) != 0 {
				t.Fatalf("wrote %v after refusing", written)
			}
			if after, _ := os.ReadDir(dir); len(after) != len(before) {
				t.Fatalf("the directory changed: %d entries, then %d", len(before), len(after))
			}
		})
	}
}

func TestInitFilesHandsTheStateToTheGivenOwner(t *testing.T) {
	// As root (make test) the owner is the image's user; otherwise the
	// caller's own, the only one it may give files to.
	uid, gid := 65532, 65532
	if os.Geteuid() != 0 {
		uid, gid = os.Getuid(), os.Getgid()
	}
	dir := filepath.Join(t.TempDir(), "state")
	if _, err := gateway.InitFiles(gateway.InitOptions{Dir: dir, UID: uid, GID: gid}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, gateway.CACertFileName), filepath.Join(dir, gateway.CAKeyFileName), filepath.Join(dir, gateway.SharedKeyFileName)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if int(sys.Uid) != uid || int(sys.Gid) != gid {
			t.Errorf("%s is owned by %d:%d, want %d:%d", p, sys.Uid, sys.Gid, uid, gid)
		}
	}
}

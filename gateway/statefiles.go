package gateway

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The files InitFiles writes into a state directory, read by
// `connectors gateway` (--ca-cert-file, --ca-key-file, --shared-key-file)
// and `connectors controller` (--proxy-ca-file) where no Secret mounts them
// (compose.yaml).
const (
	CACertFileName    = "ca.crt"
	CAKeyFileName     = "ca.key"
	SharedKeyFileName = "shared.key"
)

// sharedKeyLen is the length of a generated shared key (tokens requires 32
// bytes or more).
const sharedKeyLen = 32

// InitOptions configure InitFiles.
type InitOptions struct {
	// Dir is the state directory, created with mode 0700 when missing.
	Dir string
	// CommonName names a generated CA (default "connectors gateway").
	CommonName string
	// UID and GID own the directory and the files when both are 0 or more
	// (the process must be allowed to chown: root in compose's init
	// service); -1 leaves ownership alone.
	UID, GID int
}

// InitFiles makes sure Dir holds a gateway CA and a shared key. Files that
// exist are kept — kubeconfigs issued earlier trust that CA — when they are
// usable; files that exist but are not usable, or half a CA, are an error
// naming the file, never replaced. It returns the names of the files it
// wrote.
func InitFiles(o InitOptions) (written []string, err error) {
	if o.Dir == "" {
		return nil, errors.New("init: the state directory is required")
	}
	if o.CommonName == "" {
		o.CommonName = "connectors gateway"
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	certPath, keyPath := filepath.Join(o.Dir, CACertFileName), filepath.Join(o.Dir, CAKeyFileName)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		if _, err := ParseCA(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("init: %s and %s do not hold a usable CA (remove both to generate a new one; kubeconfigs issued with the old one stop working): %w", certPath, keyPath, err)
		}
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		_, certPEM, keyPEM, err = GenerateCA(o.CommonName)
		if err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		// The key first: a certificate without its key is never left behind.
		if err := writeStateFile(keyPath, keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := writeStateFile(certPath, certPEM, 0o644); err != nil {
			return nil, err
		}
		written = append(written, CAKeyFileName, CACertFileName)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("init: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("init: %w", keyErr)
	default:
		return nil, fmt.Errorf("init: only one of %s and %s exists: restore the other, or remove it to generate a new CA", certPath, keyPath)
	}

	keyFile := filepath.Join(o.Dir, SharedKeyFileName)
	switch shared, err := os.ReadFile(keyFile); {
	case err == nil:
		if len(shared) < sharedKeyLen {
			return nil, fmt.Errorf("init: %s holds %d bytes, at least %d are needed (remove it to generate one)", keyFile, len(shared), sharedKeyLen)
		}
	case errors.Is(err, fs.ErrNotExist):
		shared = make([]byte, sharedKeyLen)
		if _, err := rand.Read(shared); err != nil {
			return nil, fmt.Errorf("init: shared key: %w", err)
		}
		if err := writeStateFile(keyFile, shared, 0o600); err != nil {
			return nil, err
		}
		written = append(written, SharedKeyFileName)
	default:
		return nil, fmt.Errorf("init: %w", err)
	}

	if o.UID >= 0 && o.GID >= 0 {
		for _, p := range []string{o.Dir, certPath, keyPath, keyFile} {
			if err := os.Lchown(p, o.UID, o.GID); err != nil {
				return written, fmt.Errorf("init: %w", err)
			}
		}
	}
	return written, nil
}

// writeStateFile writes content to path with mode through a temporary file
// and a rename, so a reader never sees half a file.
func writeStateFile(path string, content []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) //nolint:errcheck // gone after the rename; best effort otherwise
	if _, err := f.Write(content); err != nil {
		_ = f.Close()
		return fmt.Errorf("init: %w", err)
	}
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return fmt.Errorf("init: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	return nil
}

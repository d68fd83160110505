package csi

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// CAFile returns a loader for Options.ProxyCA and
// ConfigurationsAPIOptions.ProxyCA that reads the PEM file at path and
// reads it again whenever its modification time or size changed (a
// rotated Secret volume replaces the file). A read failure after a
// successful one keeps the last good certificate.
func CAFile(path string) func() ([]byte, error) {
	var (
		mu    sync.Mutex
		pem   []byte
		mtime time.Time
		size  int64 = -1
	)
	return func() ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		fi, err := os.Stat(path)
		if err == nil && fi.ModTime().Equal(mtime) && fi.Size() == size && pem != nil {
			return pem, nil
		}
		var b []byte
		if err == nil {
			b, err = os.ReadFile(path)
		}
		if err == nil && len(b) == 0 {
			err = errors.New("the file is empty")
		}
		if err != nil {
			if pem != nil {
				return pem, nil
			}
			return nil, fmt.Errorf("read the gateway CA %s: %w", path, err)
		}
		pem, mtime, size = b, fi.ModTime(), fi.Size()
		return pem, nil
	}
}

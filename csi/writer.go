package csi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/connectors-io/connectors/render"
)

// The kubelet's atomic-writer layout: the files live in a timestamped
// directory "..<timestamp>.<random>", "..data" is a symlink to the current
// one, and each visible file is a symlink "<name>" -> "..data/<name>".
// Swapping "..data" with a rename makes a new generation visible at once.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
	timestampFmt   = "2006_01_02_15_04_05"
)

// writeAtomic makes dir hold exactly files. When the current generation
// already holds the same contents it writes nothing and returns false. The
// previous generation is kept until the next swap, so a reader that
// resolved "..data" just before a swap still finds its file.
//
// Before writing it removes every generation but the current one (a
// previous one, or one left by a failed write), so a full tmpfs never holds
// more than the current and the new generation; a failed write removes
// its new generation.
func writeAtomic(dir string, files render.Files, now time.Time) (written bool, err error) {
	current, currentDir, err := readCurrent(dir)
	if err != nil {
		return false, err
	}
	if currentDir != "" && current.Equal(files) {
		return false, nil
	}
	if err := pruneGenerations(dir, currentDir); err != nil {
		return false, err
	}
	genDir, err := os.MkdirTemp(dir, ".."+now.UTC().Format(timestampFmt)+".")
	if err != nil {
		return false, fmt.Errorf("create the new generation: %w", err)
	}
	swapped := false
	defer func() {
		if err != nil && !swapped {
			_ = os.RemoveAll(genDir)
		}
	}()
	if err := os.Chmod(genDir, 0o755); err != nil {
		return false, fmt.Errorf("chmod the new generation: %w", err)
	}
	for _, name := range files.Names() {
		p := filepath.Join(genDir, name)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return false, fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.Chmod(p, 0o644); err != nil { // despite the umask
			return false, fmt.Errorf("chmod %s: %w", name, err)
		}
	}
	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmpLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove a stale %s: %w", newDataDirName, err)
	}
	if err := os.Symlink(filepath.Base(genDir), tmpLink); err != nil {
		return false, fmt.Errorf("link the new generation: %w", err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		return false, fmt.Errorf("swap %s: %w", dataDirName, err)
	}
	swapped = true
	// Visible names, after the swap (a new name's symlink points into
	// "..data" and must not dangle): add the new ones, then drop those that
	// went away.
	for _, name := range files.Names() {
		link := filepath.Join(dir, name)
		want := filepath.Join(dataDirName, name)
		if got, err := os.Readlink(link); err == nil && got == want {
			continue
		}
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("replace %s: %w", name, err)
		}
		if err := os.Symlink(want, link); err != nil {
			return false, fmt.Errorf("link %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case name == dataDirName || name == filepath.Base(genDir) || name == currentDir:
		case isGenerationDir(name) && e.IsDir():
			if err := os.RemoveAll(p); err != nil {
				return false, fmt.Errorf("remove the old generation %s: %w", name, err)
			}
		case e.Type()&fs.ModeSymlink != 0 && files[name] == nil:
			if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dataDirName+"/") {
				if err := os.Remove(p); err != nil {
					return false, fmt.Errorf("remove %s: %w", name, err)
				}
			}
		}
	}
	return true, nil
}

// readCurrent returns the files of the current generation and its directory
// name ("" when there is none).
func readCurrent(dir string) (render.Files, string, error) {
	target, err := os.Readlink(filepath.Join(dir, dataDirName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", dataDirName, err)
	}
	gen := filepath.Join(dir, target)
	entries, err := os.ReadDir(gen)
	if err != nil {
		return nil, "", fmt.Errorf("list the current generation: %w", err)
	}
	files := render.Files{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(gen, e.Name()))
		if err != nil {
			return nil, "", fmt.Errorf("read the current %s: %w", e.Name(), err)
		}
		files[e.Name()] = b
	}
	return files, target, nil
}

// isPublished reports whether target already holds a generation.
func isPublished(target string) (bool, error) {
	fi, err := os.Lstat(filepath.Join(target, dataDirName))
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("inspect %s: %w", target, err)
	}
	return fi.Mode()&fs.ModeSymlink != 0, nil
}

// pruneGenerations removes the generation directories of dir other than
// keep.
func pruneGenerations(dir, keep string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		if name := e.Name(); name != keep && isGenerationDir(name) && e.IsDir() {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove the old generation %s: %w", name, err)
			}
		}
	}
	return nil
}

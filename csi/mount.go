package csi

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
)

// mount prepares target: it creates the directory and mounts a size-capped
// tmpfs on it unless Options.PlainDirectory is set, the target is already
// a mount point, or mounting is not permitted (then it falls back to the
// plain directory). It reports whether a tmpfs is in place.
func (d *Driver) mount(target string) (bool, error) {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return false, fmt.Errorf("create the target %s: %w", target, err)
	}
	if d.opts.PlainDirectory {
		return false, nil
	}
	fstype, err := mountType(target)
	if err != nil {
		return false, err
	}
	switch fstype {
	case "":
	case "tmpfs":
		return true, nil
	default:
		return false, newError(codes.FailedPrecondition, nil, "%s is already a %s mount the driver did not make", target, fstype)
	}
	opts := "mode=0755,size=" + strconv.FormatInt(d.opts.TmpfsBytes, 10)
	err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return false, nil
	default:
		return false, newError(codes.Internal, err, "mount a tmpfs at %s: %v", target, err)
	}
}

// cleanup undoes what the driver did at target and nothing else: it
// unmounts the tmpfs mounts on target (a mount of another type is refused,
// as is any mount below target), removes the atomic writer's own entries
// ("..data", "..data_tmp", the "..<timestamp>.<random>" generations, the
// top-level symlinks into "..data") and, when removeDir is set, the then
// empty target directory (never recursively; foreign content is left and
// reported). An absent target is fine.
func (d *Driver) cleanup(target string, removeDir bool) error {
	for range 5 { // mounts may be stacked
		mounts, err := MountPoints()
		if err != nil {
			return err
		}
		resolved, err := filepath.EvalSymlinks(target)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("resolve %s: %w", target, err)
		}
		fstype, mounted := mounts[resolved]
		if !mounted {
			break
		}
		if fstype != "tmpfs" {
			return newError(codes.FailedPrecondition, nil, "%s is a %s mount the driver did not make; left in place", target, fstype)
		}
		if err := unix.Unmount(resolved, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	resolved, err := filepath.EvalSymlinks(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resolve %s: %w", target, err)
	}
	mounts, err := MountPoints()
	if err != nil {
		return err
	}
	for m := range mounts {
		if m == resolved || strings.HasPrefix(m, resolved+"/") {
			return newError(codes.FailedPrecondition, nil, "%s has a mount at %s the driver did not make; left in place", target, m)
		}
	}
	entries, err := os.ReadDir(resolved)
	if err != nil {
		return fmt.Errorf("list %s: %w", target, err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(resolved, name)
		switch {
		case name == dataDirName || name == newDataDirName:
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
		case isGenerationDir(name) && e.IsDir():
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("remove %s: %w", p, err)
			}
			continue
		case e.Type()&fs.ModeSymlink != 0:
			if link, err := os.Readlink(p); err != nil || !strings.HasPrefix(link, dataDirName+"/") {
				continue
			}
		default:
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	if !removeDir {
		return nil
	}
	if err := os.Remove(resolved); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s holds files the driver did not write; left in place: %w", target, errForeignContent)
		}
		return fmt.Errorf("remove %s: %w", target, err)
	}
	return nil
}

// errForeignContent: the target directory holds entries the driver did not
// make, so cleanup left it in place.
var errForeignContent = errors.New("foreign content")

// isGenerationDir reports whether name is a generation directory of the
// atomic writer: "..<timestamp>.<random>".
func isGenerationDir(name string) bool {
	rest, ok := strings.CutPrefix(name, "..")
	if !ok || len(rest) <= len(timestampFmt)+1 || rest[len(timestampFmt)] != '.' {
		return false
	}
	_, err := time.Parse(timestampFmt, rest[:len(timestampFmt)])
	return err == nil
}

// mountType returns the filesystem type mounted at path ("" when path is
// no mount point), from /proc/self/mountinfo.
func mountType(path string) (string, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	mounts, err := MountPoints()
	if err != nil {
		return "", err
	}
	return mounts[resolved], nil
}

// MountPoints returns the mount points of this process's mount namespace
// and their filesystem types, from /proc/self/mountinfo.
func MountPoints() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	defer func() { _ = f.Close() }()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		if len(fields) < 7 {
			continue
		}
		fstype := ""
		for i := 6; i < len(fields)-1; i++ {
			if fields[i] == "-" {
				fstype = fields[i+1]
				break
			}
		}
		out[unescapeMountInfo(fields[4])] = fstype
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	return out, nil
}

// unescapeMountInfo undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

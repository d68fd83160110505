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
	mounted, err := isMountPoint(target)
	if err != nil {
		return false, err
	}
	if mounted {
		return true, nil
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

// cleanup unmounts target (if it is a mount point) and removes it. An
// absent target is fine.
func (d *Driver) cleanup(target string) error {
	for range 5 { // mounts may be stacked
		mounted, err := isMountPoint(target)
		if err != nil {
			return err
		}
		if !mounted {
			break
		}
		if err := unix.Unmount(target, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	if mounted, err := isMountPoint(target); err != nil || mounted {
		return errors.Join(err, fmt.Errorf("%s is still a mount point", target))
	}
	if err := os.RemoveAll(target); err != nil {
		return fmt.Errorf("remove %s: %w", target, err)
	}
	return nil
}

// isMountPoint reports whether path is a mount point, from
// /proc/self/mountinfo.
func isMountPoint(path string) (bool, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", path, err)
	}
	mounts, err := MountPoints()
	if err != nil {
		return false, err
	}
	return mounts[resolved] != "", nil
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

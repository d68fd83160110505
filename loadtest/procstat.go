package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// procTree is a process and its descendants.
func procTree(root int) []int {
	if root <= 0 {
		return nil
	}
	parents := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			parents[st.ppid] = append(parents[st.ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, parents[out[i]]...)
	}
	return out
}

type procStat struct {
	ppid        int
	utime, stim int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, fmt.Errorf("process %d: %w", pid, err)
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("process %d: unreadable stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("process %d: short stat", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return procStat{ppid: ppid, utime: ut, stim: st}, nil
}

// statusKiB reads a "Name:   123 kB" line of /proc/PID/status.
func statusKiB(pid int, name string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// usage is the CPU and memory of a process tree at one moment.
type usage struct {
	cpuTicks int64
	rssKiB   int64 // sum of VmRSS
	peakKiB  int64 // sum of VmHWM (since the last resetPeak)
}

func measure(root int, tree bool) usage {
	var u usage
	for _, pid := range pids(root, tree) {
		if st, err := readStat(pid); err == nil {
			u.cpuTicks += st.utime + st.stim
		}
		u.rssKiB += statusKiB(pid, "VmRSS")
		u.peakKiB += statusKiB(pid, "VmHWM")
	}
	return u
}

// resetPeak resets VmHWM of the tree to its current RSS (clear_refs 5; needs
// the right to write it: the owner or root). It reports whether it could.
func resetPeak(root int, tree bool) bool {
	ok := root > 0
	for _, pid := range pids(root, tree) {
		if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0); err != nil {
			ok = false
		}
	}
	return ok
}

func pids(root int, tree bool) []int {
	switch {
	case root <= 0:
		return nil
	case tree:
		return procTree(root)
	default:
		return []int{root}
	}
}

package csi

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/connectors-io/connectors/render"
)

func TestAFullTmpfsDoesNotFreezeTheVolume(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	files := func(kib int, fill byte) render.Files {
		return render.Files{"a": bytes.Repeat([]byte{fill}, kib<<10)}
	}
	generations := func() []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if isGenerationDir(e.Name()) {
				out = append(out, e.Name())
			}
		}
		return out
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		name    string
		files   render.Files
		wantErr bool
		wantGen int
	}{
		{name: "a first generation of 20 KiB fits", files: files(20, 'a'), wantGen: 1},
		{name: "a second generation of 50 KiB does not fit and leaves no partial generation", files: files(50, 'b'), wantErr: true, wantGen: 1},
		{name: "a third generation of 20 KiB fits again", files: files(20, 'c'), wantGen: 2},
		{name: "a fourth generation of 20 KiB fits after the previous one is pruned", files: files(20, 'd'), wantGen: 2},
	} {
		now = now.Add(time.Second)
		_, err := writeAtomic(dir, step.files, now)
		if (err != nil) != step.wantErr {
			t.Fatalf("%s: err = %v", step.name, err)
		}
		if got := generations(); len(got) != step.wantGen {
			t.Errorf("%s: generations %s, want %d", step.name, strings.Join(got, " "), step.wantGen)
		}
		if !step.wantErr {
			current, _, err := readCurrent(dir)
			if err != nil || !current.Equal(step.files) {
				t.Errorf("%s: the current generation is not the written one (%v)", step.name, err)
			}
		}
	}
}

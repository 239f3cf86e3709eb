package main

import (
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/groundzero/groundzero/internal/evidence"
)

// TestEvidenceAuditor runs testdata/evidence: the auditor's stock-tool
// commands from the README on real bundles, and the HTML report rendered by
// headless Chromium.
func TestEvidenceAuditor(t *testing.T) {
	for _, tool := range []string{"chromium", "python3", "tar", "sha256sum", "gpg", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps` (scripts/deps --all)", tool)
		}
	}
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){"pngcheck": cmdPNGCheck}
	for k, v := range commands {
		cmds[k] = v
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/evidence",
		Setup: func(env *testscript.Env) error {
			if err := setup(env); err != nil {
				return err
			}
			for name, text := range map[string]string{"auditor-openpgp.sh": evidence.AuditorOpenPGP, "auditor-ssh.sh": evidence.AuditorSSH} {
				if err := os.WriteFile(filepath.Join(env.WorkDir, name), []byte(text), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		Cmds:                cmds,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// pngcheck FILE WIDTH HEIGHT asserts that FILE is a PNG image of that size
// that is not blank: it has many colours, and a fair share of its pixels
// are not the background.
func cmdPNGCheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: pngcheck FILE WIDTH HEIGHT")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		ts.Fatalf("%s is not a PNG image: %v", args[0], err)
	}
	w, _ := strconv.Atoi(args[1])
	h, _ := strconv.Atoi(args[2])
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		ts.Fatalf("%s is %dx%d, want %dx%d", args[0], b.Dx(), b.Dy(), w, h)
	}
	colours, ink := map[[3]uint32]bool{}, 0
	bg := pixel(img, 0, 0)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := pixel(img, x, y)
			colours[p] = true
			if p != bg {
				ink++
			}
		}
	}
	if len(colours) < 16 || ink < w*h/100 {
		ts.Fatalf("%s looks blank: %d colours, %d of %d pixels differ from the background", args[0], len(colours), ink, w*h)
	}
	ts.Logf("%s: %dx%d, %d colours, %d pixels of ink", args[0], w, h, len(colours), ink)
}

func pixel(img image.Image, x, y int) [3]uint32 {
	r, g, b, _ := img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y).RGBA()
	return [3]uint32{r >> 8, g >> 8, b >> 8}
}

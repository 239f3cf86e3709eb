package tfrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// The engine cache keeps, per binary path, the private copy that Identify
// made and what it learned (SHA-256, version), so that a command need not
// copy and hash a 100 MB binary each time. An entry is used only while both
// the binary and the copy are the very files that were identified: same
// device, inode, size, modification and change times. Any write to either
// moves its change time, which no unprivileged process can set back, and the
// binary is identified afresh.
//
//	CACHE/<32 hex of SHA-256(path)>/    mode 0700
//	    <binary name>                    the copy, mode 0500
//	    engine.json                      the record below
//	    tofu.rc                          the CLI configuration (CLIConfigName)

// fileStamp identifies one version of one file.
type fileStamp struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
}

func stampOf(fi os.FileInfo) (fileStamp, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{}, false
	}
	return fileStamp{Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: fi.Size(),
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, true
}

type engineRecord struct {
	Source  string    `json:"source"`
	Binary  fileStamp `json:"binary"`
	Copy    fileStamp `json:"copy"`
	SHA256  string    `json:"sha256"`
	Version string    `json:"version"`
}

const recordName = "engine.json"

// IdentifyCached is Identify with the engine cache in cacheDir (created
// private, and refused inside a git work tree). The Engine it returns may
// come from the cache (Engine.Cached); its Close leaves cached copies in
// place. Without a usable cache it is Identify.
func IdentifyCached(ctx context.Context, bin, cacheDir string) (*Engine, error) {
	if cacheDir == "" || enclosingRepo(cacheDir) != "" {
		return Identify(ctx, bin)
	}
	src, fi, err := openEngine(bin)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	stamp, ok := stampOf(fi)
	if !ok {
		return Identify(ctx, bin)
	}
	key := sha256.Sum256([]byte(bin))
	entry := filepath.Join(cacheDir, hex.EncodeToString(key[:16]))
	if e := lookup(entry, bin, stamp); e != nil {
		return e, nil
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return Identify(ctx, bin)
	}
	if err := os.Chmod(cacheDir, 0o700); err != nil {
		return Identify(ctx, bin)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".new-")
	if err != nil {
		return Identify(ctx, bin)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	if err := os.WriteFile(filepath.Join(tmp, CLIConfigName), []byte(CLIConfig), 0o600); err != nil {
		cleanup()
		return nil, err
	}
	e, err := identifyIn(ctx, bin, src, fi, tmp, cleanup)
	if err != nil {
		return nil, err
	}
	// The binary must not have changed while it was copied.
	if now, err := os.Stat(bin); err != nil || !sameStamp(now, stamp) {
		return e, nil // use this copy once, keep nothing
	}
	cfi, err := os.Lstat(e.Path)
	if err != nil {
		return e, nil
	}
	cstamp, _ := stampOf(cfi)
	rec, _ := json.Marshal(engineRecord{Source: bin, Binary: stamp, Copy: cstamp, SHA256: e.SHA256, Version: e.Version})
	if err := os.WriteFile(filepath.Join(tmp, recordName), rec, 0o400); err != nil {
		return e, nil
	}
	os.RemoveAll(entry)
	if err := os.Rename(tmp, entry); err != nil {
		return e, nil // another process was first; this copy serves once
	}
	e.Path, e.owned = filepath.Join(entry, filepath.Base(e.Path)), false
	return e, nil
}

// lookup returns the cached engine for bin when its record matches the
// binary as it is now and the copy is untouched; otherwise nil.
func lookup(entry, bin string, stamp fileStamp) *Engine {
	dfi, err := os.Lstat(entry)
	if err != nil || !dfi.IsDir() || dfi.Mode().Perm() != 0o700 {
		return nil
	}
	f, err := os.Open(filepath.Join(entry, recordName))
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil
	}
	var rec engineRecord
	if json.Unmarshal(data, &rec) != nil || rec.Source != bin || rec.Binary != stamp || rec.SHA256 == "" || rec.Version == "" {
		return nil
	}
	copyPath := filepath.Join(entry, filepath.Base(bin))
	if copyPath == filepath.Join(entry, CLIConfigName) {
		copyPath += ".bin"
	}
	cfi, err := os.Lstat(copyPath)
	if err != nil || !cfi.Mode().IsRegular() || !sameStamp(cfi, rec.Copy) {
		return nil
	}
	return &Engine{Path: copyPath, Source: bin, SHA256: rec.SHA256, Version: rec.Version, Cached: true}
}

func sameStamp(fi os.FileInfo, want fileStamp) bool {
	got, ok := stampOf(fi)
	return ok && got == want
}

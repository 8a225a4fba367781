package pebble

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// freezeFS is one engine's file system. A failed write or sync would reach
// Pebble's fatal paths — some of which are not even panics that a recover
// catches (rotating the WAL after a failed write unlocks a mutex it does not
// hold: "fatal error: sync: unlock of unlocked mutex") — so Pebble never sees
// one: the first write or sync that fails marks the engine failed, and it and
// every write or sync of the engine after it block forever. The engine's
// callers are released by the failure (engine.commit); the goroutines of
// Pebble that wait on the frozen file system stay with the abandoned engine,
// which can no longer touch the directory, so a new engine can open it.
type freezeFS struct {
	vfs.FS
	e *engine
}

// frozen blocks forever if the engine has failed.
func (fs freezeFS) frozen() {
	if fs.e.fenced.Load() {
		select {}
	}
}

// check freezes the engine if err is a failed write of op on name. While the
// engine opens, Pebble returns such errors from Open, and check returns err.
func (fs freezeFS) check(op, name string, err error) error {
	if err != nil && fs.e.live.Load() {
		fs.e.fail(fmt.Errorf("%s %s: %w", op, name, err))
		select {}
	}
	return err
}

func (fs freezeFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	fs.frozen()
	f, err := fs.FS.Create(name, category)
	if err := fs.check("create", name, err); err != nil {
		return nil, err
	}
	return freezeFile{f, fs, name}, nil
}

func (fs freezeFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	fs.frozen()
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err := fs.check("reuse", newname, err); err != nil {
		return nil, err
	}
	return freezeFile{f, fs, newname}, nil
}

func (fs freezeFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	fs.frozen()
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	if err != nil {
		return nil, err
	}
	return freezeFile{f, fs, name}, nil
}

func (fs freezeFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return freezeFile{f, fs, name}, nil
}

func (fs freezeFS) Link(oldname, newname string) error {
	fs.frozen()
	return fs.FS.Link(oldname, newname)
}

func (fs freezeFS) Remove(name string) error {
	fs.frozen()
	return fs.FS.Remove(name)
}

func (fs freezeFS) RemoveAll(name string) error {
	fs.frozen()
	return fs.FS.RemoveAll(name)
}

func (fs freezeFS) Rename(oldname, newname string) error {
	fs.frozen()
	return fs.FS.Rename(oldname, newname)
}

// freezeFile is a file of a freezeFS: its writes and syncs freeze.
type freezeFile struct {
	vfs.File
	fs   freezeFS
	name string
}

func (f freezeFile) Write(p []byte) (int, error) {
	f.fs.frozen()
	n, err := f.File.Write(p)
	return n, f.fs.check("write", f.name, err)
}

func (f freezeFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.frozen()
	n, err := f.File.WriteAt(p, off)
	return n, f.fs.check("write", f.name, err)
}

func (f freezeFile) Preallocate(offset, length int64) error {
	f.fs.frozen()
	err := f.File.Preallocate(offset, length)
	return f.fs.check("preallocate", f.name, err)
}

func (f freezeFile) Sync() error {
	f.fs.frozen()
	err := f.File.Sync()
	return f.fs.check("sync", f.name, err)
}

func (f freezeFile) SyncData() error {
	f.fs.frozen()
	err := f.File.SyncData()
	return f.fs.check("sync", f.name, err)
}

func (f freezeFile) SyncTo(length int64) (bool, error) {
	f.fs.frozen()
	full, err := f.File.SyncTo(length)
	return full, f.fs.check("sync", f.name, err)
}

//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps a regular file read-only, so records are read in place
// instead of being copied by read(2) into a buffer first: the kernel's copy
// was a quarter of a replay's CPU. ok is false when the file cannot be
// mapped (empty, not regular, too large for the address space); the caller
// reads it as a stream then.
func mapFile(f *os.File, st os.FileInfo) (data []byte, unmap func(), ok bool) {
	if !st.Mode().IsRegular() || st.Size() <= 0 || int64(int(st.Size())) != st.Size() {
		return nil, nil, false
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, false
	}
	_ = unix.Madvise(data, unix.MADV_SEQUENTIAL) // read ahead, drop behind
	return data, func() { _ = unix.Munmap(data) }, true
}

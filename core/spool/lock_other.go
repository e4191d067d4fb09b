//go:build !unix

package spool

import (
	"errors"
	"os"
)

func lockDir(dir string) (*os.File, error) {
	return nil, errors.New("the disk spool needs flock(2), which this platform lacks")
}

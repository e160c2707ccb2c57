package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// eachLine calls fn for every line of r with its 1-based number, its
// content without the line ending ("\n" or "\r\n"), and that content's
// length. A line longer than max is not kept in memory: fn gets a nil line
// and the length, so a hostile file cannot make the reader buffer it whole.
func eachLine(r io.Reader, max int, fn func(n int, line []byte, size int)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for n := 1; ; n++ {
		buf = buf[:0]
		size := 0
		var last []byte
		var err error
		for {
			last, err = br.ReadSlice('\n')
			size += len(last)
			if len(buf)+len(last) <= max+2 { // room for "\r\n"
				buf = append(buf, last...)
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if err != nil && err != io.EOF {
			return err
		}
		if size == 0 && err == io.EOF {
			return nil
		}
		if bytes.HasSuffix(last, []byte("\n")) {
			size--
			if size > 0 && (bytes.HasSuffix(last, []byte("\r\n")) || (len(last) == 1 && bytes.HasSuffix(buf, []byte("\r\n")))) {
				size--
			}
		}
		var line []byte
		if size <= max {
			line = buf[:size]
		}
		fn(n, line, size)
		if err == io.EOF {
			return nil
		}
	}
}

// Package pythonsdk carries the Python SDK (gofer_sdk, plain Python, standard
// library only) inside the gofer binary, so that `gofer pipeline init
// --language python` can copy into a new project exactly the SDK of the gofer
// that wrote it, and the project runs with python3 alone, no pip install.
// This Go file sits next to gofer_sdk because go:embed reaches only files in
// its own folder and below.
package pythonsdk

import (
	"embed"
	"io/fs"
)

// The files are named by pattern: embedding the folder itself would leave
// out __init__.py (go:embed skips names starting with '_' in a folder), and
// a pattern such as gofer_sdk/* would take a __pycache__ folder along.
//
//go:embed gofer_sdk/*.py gofer_sdk/py.typed
var files embed.FS

// Files returns the package: gofer_sdk/__init__.py, gofer_sdk/builder.py
// and the rest, under the folder gofer_sdk.
func Files() fs.FS { return files }

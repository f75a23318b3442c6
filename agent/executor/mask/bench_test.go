package mask

import (
	"encoding/base64"
	"fmt"
	"math/rand"
	"testing"
)

// BenchmarkStream masks log-like output the way the executor's collector
// does: 8 KiB pieces, released whenever 32 KiB are pending, with 1, 10 and
// 100 secrets of 40 random bytes each.
func BenchmarkStream(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	// Output: lines of words, numbers and base64 blobs (none a secret).
	var out []byte
	for len(out) < 1<<20 {
		switch rng.Intn(3) {
		case 0:
			blob := make([]byte, 30+rng.Intn(60))
			rng.Read(blob)
			out = append(out, base64.StdEncoding.EncodeToString(blob)...)
		case 1:
			out = fmt.Appendf(out, "step %d of %d: copied %d files in %dms", rng.Intn(100), 100, rng.Intn(5000), rng.Intn(900))
		default:
			out = append(out, "INFO compiling package github.com/example/service/internal/handlers"...)
		}
		out = append(out, '\n')
	}
	for _, n := range []int{1, 10, 100} {
		var values [][]byte
		for i := 0; i < n; i++ {
			v := make([]byte, 40)
			rng.Read(v)
			values = append(values, []byte(base64.RawURLEncoding.EncodeToString(v)))
		}
		s := New(values)
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(out)))
			for i := 0; i < b.N; i++ {
				st := NewStream(s)
				for p := out; len(p) > 0; {
					k := min(len(p), 8<<10)
					st.Write(p[:k])
					p = p[k:]
					if st.Pending() >= 32<<10 {
						st.Next(false)
					}
				}
				st.Next(true)
			}
		})
	}
}

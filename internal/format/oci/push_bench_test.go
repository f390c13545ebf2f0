package oci_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// BenchmarkPush1MiB pushes 1 MiB images with go-containerregistry, four at
// a time, through the whole server in-process (durable: fsyncs and
// SQLite commits); images are built before the clock.
func BenchmarkPush1MiB(b *testing.B) {
	e := apptest.New(b, "repositories:\n  - {key: d, format: oci, kind: local, tier: dev}\n")
	imgs := make([]v1.Image, b.N)
	for i := range imgs {
		buf := make([]byte, 1<<20)
		rand.Read(buf)
		img, _ := mutate.AppendLayers(empty.Image, static.NewLayer(buf, types.OCILayer))
		img, _ = mutate.Config(img, v1.Config{Labels: map[string]string{"n": fmt.Sprint(i)}})
		img.Digest()
		imgs[i] = img
	}
	host := strings.TrimPrefix(e.URL, "http://")
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: apptest.AdminPassword})
	b.ResetTimer()
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				ref, _ := name.ParseReference(fmt.Sprintf("%s/d/img:%d", host, i), name.Insecure)
				if err := remote.Write(ref, imgs[i], auth); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := range imgs {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

package lifecycle

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/format"
)

// BlobOpener opens content by digest.
type BlobOpener interface {
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, error)
}

// signatureGate is filled in by the signature verification step.
func signatureGate(ctx context.Context, g *config.SignatureGate, in GateInput, f format.Format) GateResult {
	return GateResult{Gate: "require_signature", Detail: "signature verification is not available"}
}

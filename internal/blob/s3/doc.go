// Package s3 is the scale-out blob store: blobs in an S3-compatible bucket
// (AWS S3, MinIO, versitygw, Ceph RGW...) through minio-go, shared by every
// node of an installation.
//
// Layout under the configured prefix:
//
//	blobs/sha256/ab/<hex>       committed blobs, named by their digest
//	uploads/<id>/data           a multipart upload in progress (parts of PartSize)
//	uploads/<id>/tail-<rand>    a suspended writer's bytes not yet in a part
//
// A writer buffers up to PartSize bytes; a small blob is one PUT straight to
// its final key at Commit, a larger one streams as a multipart upload to
// uploads/<id>/data, completed at Commit and copied server-side to its final
// key (skipped when the digest already exists). Nothing appears under
// blobs/ before Commit, and S3 acknowledges a PUT or a completed upload only
// once it is durable, so the metadata committed afterwards never refers to
// partial bytes.
//
// Suspend (an OCI chunked upload between requests) stores the bytes not yet
// in a part as a tail object and returns a state holding the multipart
// upload ID, the parts, the tail's name and the marshalled sha256 state;
// the metadata store keeps it (uploads table), so any node resumes it.
// Resuming an older state discards what was written after it: parts are
// completed from the state's list only, and each Suspend writes a new tail.
//
// Invariants: keys are derived from validated digests and random IDs only;
// temporary objects and multipart uploads no session owns (a crash) are
// removed by RemoveStaleUploads.
package s3

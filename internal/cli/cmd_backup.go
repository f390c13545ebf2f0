package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/internal/app"
	"github.com/cofferhq/coffer/internal/backup"
	"github.com/cofferhq/coffer/internal/blob"
	s3store "github.com/cofferhq/coffer/internal/blob/s3"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/meta"
)

// The storage commands (backup, restore, verify) work on an instance's
// storage directly, beside a running server or without one: they read the
// same configuration as `coffer serve`.

type storageFlags struct {
	cfgPath, dataDir, output string
}

func (s *storageFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&s.cfgPath, "config", "c", "", "the server's configuration file (YAML)")
	f.StringVar(&s.dataDir, "data", "", "the server's data directory (default ./coffer-data)")
	f.StringVarP(&s.output, "output", "o", "text", "output format: text or json")
}

func (s *storageFlags) config() (config.Config, error) {
	cfg, err := config.Load(s.cfgPath, config.Options{Formats: app.FormatNames()})
	if err != nil {
		return cfg, err
	}
	if s.dataDir != "" {
		cfg.Storage.DataDir = s.dataDir
	}
	if s.output != "text" && s.output != "json" {
		return cfg, fmt.Errorf("--output %q is not one of text, json", s.output)
	}
	return cfg, nil
}

// open opens the instance's stores as `coffer serve` would.
func (s *storageFlags) open(ctx context.Context) (meta.Store, blob.Store, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, nil, err
	}
	return app.OpenStorage(ctx, cfg, nil)
}

func (s *storageFlags) print(w io.Writer, v any, kv ...string) error {
	if s.output == "json" {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	return fields(w, kv...)
}

func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

// openDest opens a backup destination: a directory, or s3://bucket/prefix
// with the connection in COFFER_BACKUP_S3_ENDPOINT, _ACCESS_KEY,
// _SECRET_KEY and _REGION (path-style addressing; the bucket is created
// when missing).
func openDest(ctx context.Context, spec string, create bool) (backup.Dest, error) {
	rest, ok := strings.CutPrefix(spec, "s3://")
	if !ok {
		if _, err := os.Stat(spec); err != nil && !create {
			return nil, fmt.Errorf("%s holds no complete backup: %w", spec, err)
		}
		return backup.NewDir(spec)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return nil, fmt.Errorf("%q: write s3://bucket/prefix", spec)
	}
	ep := os.Getenv("COFFER_BACKUP_S3_ENDPOINT")
	if ep == "" {
		return nil, fmt.Errorf("a backup to %s needs COFFER_BACKUP_S3_ENDPOINT (and _ACCESS_KEY, _SECRET_KEY, _REGION)", spec)
	}
	return backup.NewBucket(ctx, s3store.Options{Endpoint: ep, Bucket: bucket, Prefix: prefix, Region: os.Getenv("COFFER_BACKUP_S3_REGION"),
		AccessKey: os.Getenv("COFFER_BACKUP_S3_ACCESS_KEY"), SecretKey: os.Getenv("COFFER_BACKUP_S3_SECRET_KEY"),
		PathStyle: true, CreateBucket: create})
}

func storageCommands(stderr io.Writer) []*cobra.Command {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return []*cobra.Command{backupCmd(log), restoreCmd(log), verifyCmd(log)}
}

func backupCmd(log *slog.Logger) *cobra.Command {
	var s storageFlags
	var to string
	cmd := &cobra.Command{
		Use:   "backup --to DIR",
		Short: "Back up the instance into DIR while it keeps serving (incremental: blobs already in DIR are not copied again)",
		Long: "Back up the instance into DIR while the server keeps serving: a consistent snapshot of the\n" +
			"metadata and every blob it references. DIR may hold earlier backups: blobs are content-addressed\n" +
			"and shared by every snapshot, so only new ones are copied. Garbage collection is held while the\n" +
			"blobs are copied. Restore with `coffer restore --from DIR`.",
		Args: cobra.NoArgs,
	}
	s.add(cmd)
	cmd.Flags().StringVar(&to, "to", "", "backup directory (created if needed), or s3://bucket/prefix (COFFER_BACKUP_S3_* environment)")
	cmd.MarkFlagRequired("to")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext(cmd)
		defer stop()
		store, blobs, err := s.open(ctx)
		if err != nil {
			return err
		}
		defer store.Close()
		dest, err := openDest(ctx, to, true)
		if err != nil {
			return err
		}
		rep, err := backup.RunTo(ctx, backup.Source{Store: store, Blobs: blobs, Log: log}, dest)
		if err != nil {
			return err
		}
		return s.print(cmd.OutOrStdout(), rep,
			"Snapshot", rep.ID,
			"Directory", rep.Dir,
			"Blobs", fmt.Sprintf("%d (%s)", rep.Blobs, humanSize(rep.Bytes)),
			"Copied", fmt.Sprintf("%d (%s); the rest were already in the backup", rep.Copied, humanSize(rep.CopiedBytes)),
			"Took", rep.Finished.Sub(rep.Started).Round(1e6).String())
	}
	return cmd
}

func restoreCmd(log *slog.Logger) *cobra.Command {
	var s storageFlags
	var from, snapshot string
	cmd := &cobra.Command{
		Use:   "restore --from DIR [--snapshot ID]",
		Short: "Restore a backup into an empty data directory, or the configured empty PostgreSQL database and bucket (every blob verified)",
		Args:  cobra.NoArgs,
	}
	s.add(cmd)
	cmd.Flags().StringVar(&from, "from", "", "backup directory, or s3://bucket/prefix (COFFER_BACKUP_S3_* environment)")
	cmd.Flags().StringVar(&snapshot, "snapshot", "", "snapshot id (default: the latest)")
	cmd.MarkFlagRequired("from")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.config()
		if err != nil {
			return err
		}
		ctx, stop := signalContext(cmd)
		defer stop()
		var rep backup.RestoreReport
		where := cfg.Storage.DataDir
		src, err := openDest(ctx, from, false)
		if err != nil {
			return err
		}
		if cfg.Storage.Database.Postgres != nil || cfg.Storage.Blobs.S3 != nil {
			// The configured back-ends: an empty database and bucket.
			store, blobs, err := app.OpenStorage(ctx, cfg, nil)
			if err != nil {
				return err
			}
			defer store.Close()
			if rep, err = backup.RestoreIntoFrom(ctx, src, snapshot, store, blobs, log); err != nil {
				return err
			}
			where = "the configured database and blob store"
		} else if rep, err = backup.RestoreFrom(ctx, src, snapshot, cfg.Storage.DataDir, log); err != nil {
			return err
		}
		return s.print(cmd.OutOrStdout(), rep,
			"Restored", rep.ID,
			"Into", where,
			"Blobs", fmt.Sprintf("%d (%s), each verified against its digest", rep.Blobs, humanSize(rep.Bytes)),
			"Took", rep.Duration.Round(1e6).String())
	}
	return cmd
}

func verifyCmd(log *slog.Logger) *cobra.Command {
	var s storageFlags
	var quick bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every blob against its digest and every reference against the blob store; report, repair nothing",
		Long: "Check every blob the metadata references: that it exists, has its recorded size, and (unless\n" +
			"--quick) that its content hashes to its digest. Files no metadata knows are listed too. Nothing\n" +
			"is repaired or removed. Exits 1 when something is wrong.",
		Args: cobra.NoArgs,
	}
	s.add(cmd)
	cmd.Flags().BoolVar(&quick, "quick", false, "check existence and sizes only, do not hash contents")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext(cmd)
		defer stop()
		store, blobs, err := s.open(ctx)
		if err != nil {
			return err
		}
		defer store.Close()
		rep, err := backup.Verify(ctx, store, blobs, !quick)
		if err != nil {
			return err
		}
		list := func(ds []string) string {
			if len(ds) == 0 {
				return "0"
			}
			return strconv.Itoa(len(ds)) + ": " + strings.Join(ds, " ")
		}
		if err := s.print(cmd.OutOrStdout(), rep,
			"Blobs checked", fmt.Sprintf("%d (%s)", rep.Blobs, humanSize(rep.Bytes)),
			"Contents hashed", strconv.FormatBool(rep.Deep),
			"Missing", list(rep.Missing),
			"Wrong size", list(rep.SizeMismatch),
			"Wrong digest", list(rep.DigestMismatch),
			"Unreferenced files", list(rep.Unreferenced)); err != nil {
			return err
		}
		if !rep.OK() {
			return fmt.Errorf("verify: %s", rep.Summary())
		}
		return nil
	}
	return cmd
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/strata-db/strata/objstore"
)

const serveAbout = `Runs strata in one process on embedded defaults: a SQLite catalog and
objects in a local directory, both under the data dir (~/.strata), unless
--catalog-url and --object-store-url point elsewhere.

The catalog is created and migrated on start. GET /healthz on --http-addr
answers 200 while the process is up. SIGINT or SIGTERM shut it down cleanly.`

func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("serve", "", serveAbout)
	var st storage
	st.register(c)
	httpAddr := c.fs.String("http-addr", "127.0.0.1:8080", "`address` of the HTTP API and health check")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	if err := st.resolve(); err != nil {
		return err
	}
	cat, bucket, err := st.open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	defer bucket.Close()

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return settingError{"http-addr", err}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	slog.Info("strata serving", "http", ln.Addr().String(), "data_dir", st.dataDir,
		"catalog", objstore.Redact(st.catalogURL), "objects", bucket.String())

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	slog.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	slog.Info("stopped")
	return nil
}

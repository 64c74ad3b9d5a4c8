package ingest

// ReuploadAfter lets tests shorten how long a flush waits for the catalog
// before uploading its files again.
var ReuploadAfter = &reuploadAfter

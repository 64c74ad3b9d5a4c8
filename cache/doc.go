// Package cache keeps Parquet files on local SSD in front of the object
// store: an on-disk LRU, the cache node's HTTP server, and the consistent
// hash ring that maps each object key to its cache node.
package cache

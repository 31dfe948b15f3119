package boltstore

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketReportsV1 is schema version 1's report bucket: every install's
// reports in one tree, keyed id "/" seq(8, BE).
var bucketReportsV1 = []byte("reports")

// migrateChunk bounds the reports one migration transaction moves, so a
// large store migrates in steps of bounded memory.
const migrateChunk = 20000

// migrateReportsV1 moves version 1's reports into a bucket per install
// (bucketReports), a chunk per transaction. Every chunk moves its keys
// atomically, so a migration cut short by a crash goes on where it
// stopped on the next open; the old bucket goes with the last chunk.
func migrateReportsV1(db *bolt.DB) error {
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			old := tx.Bucket(bucketReportsV1)
			if old == nil {
				done = true
				return nil
			}
			var keys [][]byte
			c := old.Cursor()
			for k, v := c.First(); k != nil && len(keys) < migrateChunk; k, v = c.Next() {
				i := bytes.IndexByte(k, '/')
				if i <= 0 || len(k) != i+1+8 || v == nil {
					return fmt.Errorf("migrate reports: key %q is not install/seq: restore the store from a backup", k)
				}
				ib, err := tx.Bucket(bucketReports).CreateBucketIfNotExists(k[:i])
				if err != nil {
					return fmt.Errorf("migrate reports of install %s: %w", k[:i], err)
				}
				if err := ib.Put(bytes.Clone(k[i+1:]), bytes.Clone(v)); err != nil {
					return fmt.Errorf("migrate reports of install %s: %w", k[:i], err)
				}
				keys = append(keys, bytes.Clone(k))
			}
			if len(keys) == 0 {
				done = true
				return tx.DeleteBucket(bucketReportsV1)
			}
			for _, k := range keys {
				if err := old.Delete(k); err != nil {
					return fmt.Errorf("migrate reports: %w", err)
				}
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

/**
 * Numbered schema migrations. Never edit a released migration: add a new one. Each
 * engine release must read every directory an earlier release wrote.
 */
export interface Migration {
  version: number;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE account (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  account_id TEXT NOT NULL,
  kms_authorized INTEGER NOT NULL DEFAULT 0,
  price_micros INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
-- Balance is derived: SUM(amount_micros). Charges are negative and point at their audit entry.
CREATE TABLE ledger (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('opening', 'topup', 'charge')),
  amount_micros INTEGER NOT NULL,
  audit_seq INTEGER REFERENCES audit(seq)
);
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time TEXT NOT NULL,
  region TEXT NOT NULL,
  operation TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  kms_api TEXT NOT NULL,
  billable INTEGER NOT NULL,
  price_micros INTEGER NOT NULL
);
CREATE INDEX audit_region ON audit(region);
CREATE INDEX audit_resource ON audit(resource_id);
-- Key metadata and wrapped key material are kept apart from everything else.
CREATE TABLE kms_keys (
  key_id TEXT PRIMARY KEY,
  region TEXT NOT NULL UNIQUE,
  alias TEXT NOT NULL,
  description TEXT NOT NULL,
  wrapped_material BLOB NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE data_keys (
  region TEXT PRIMARY KEY,
  key_id TEXT NOT NULL REFERENCES kms_keys(key_id),
  wrapped_dk BLOB NOT NULL,
  created_at TEXT NOT NULL
);
-- A lineage is the disk a chain of snapshots and clones started from: one block file, one working key.
CREATE TABLE lineages (
  lineage_id TEXT PRIMARY KEY,
  region TEXT NOT NULL,
  encrypted INTEGER NOT NULL,
  next_slot INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE TABLE free_slots (
  lineage_id TEXT NOT NULL,
  slot INTEGER NOT NULL,
  PRIMARY KEY (lineage_id, slot)
) WITHOUT ROWID;
CREATE TABLE disks (
  disk_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  zone TEXT NOT NULL,
  region TEXT NOT NULL,
  disk_type TEXT NOT NULL,
  disk_usage TEXT NOT NULL,
  size_gb INTEGER NOT NULL,
  encrypted INTEGER NOT NULL,
  kms_key_id TEXT,
  state TEXT NOT NULL,
  snapshot_id TEXT,
  source_disk_id TEXT,
  lineage_id TEXT NOT NULL REFERENCES lineages(lineage_id),
  tags TEXT NOT NULL DEFAULT '{}',
  -- For a disk created by migration (M1): set once its data copy completed.
  migrated_at TEXT,
  client_token TEXT UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE snapshots (
  snapshot_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  disk_id TEXT NOT NULL,
  zone TEXT NOT NULL,
  region TEXT NOT NULL,
  encrypted INTEGER NOT NULL,
  kms_key_id TEXT,
  size_gb INTEGER NOT NULL,
  state TEXT NOT NULL,
  lineage_id TEXT NOT NULL REFERENCES lineages(lineage_id),
  copied_from TEXT,
  client_token TEXT UNIQUE,
  created_at TEXT NOT NULL
);
-- The block map: which slot of the lineage's block file holds unit idx of a disk or snapshot.
-- Units are shared copy-on-write between a disk and its snapshots; a slot is free when no row names it.
CREATE TABLE units (
  owner_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  lineage_id TEXT NOT NULL,
  slot INTEGER NOT NULL,
  nonce BLOB,
  tag BLOB,
  PRIMARY KEY (owner_id, idx)
) WITHOUT ROWID;
CREATE INDEX units_slot ON units(lineage_id, slot);
CREATE TABLE instances (
  instance_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  zone TEXT NOT NULL,
  region TEXT NOT NULL,
  instance_type TEXT NOT NULL,
  local_storage INTEGER NOT NULL,
  client_token TEXT UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE attachments (
  attachment_id TEXT PRIMARY KEY,
  disk_id TEXT NOT NULL UNIQUE REFERENCES disks(disk_id),
  instance_id TEXT NOT NULL REFERENCES instances(instance_id),
  capacity_bytes INTEGER NOT NULL,
  psk_file TEXT NOT NULL,
  attached_at TEXT NOT NULL
);
CREATE TABLE images (
  image_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  region TEXT NOT NULL,
  snapshot_ids TEXT NOT NULL,
  encrypted INTEGER NOT NULL,
  shared_with TEXT NOT NULL DEFAULT '[]',
  copied_from TEXT,
  client_token TEXT UNIQUE,
  created_at TEXT NOT NULL
);
`,
  },
  {
    version: 2,
    sql: `
-- Idempotency tokens: a retried create returns what the first made; the same token with other
-- parameters is refused. Replaces the per-table client_token columns (kept, no longer written).
CREATE TABLE client_tokens (
  token TEXT PRIMARY KEY,
  operation TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);
-- Unused since the PSK is derived from a per-engine secret (meta nbd_psk_secret); kept because
-- a released migration is never edited.
ALTER TABLE attachments ADD COLUMN psk_key TEXT;
-- Lineages deleted but whose block file may still be on disk (removed after commit, or by the
-- next open when the process died in between).
CREATE TABLE dead_lineages (lineage_id TEXT PRIMARY KEY, deleted_at TEXT NOT NULL);
`,
  },
  {
    version: 3,
    sql: `
-- D14: a running balance kept in the account row (same transaction as each ledger entry), so a
-- billable call reads one row instead of summing the ledger. TOTAL, not SUM: an old ledger that
-- already overflowed must still migrate (it is then reported by encdisk check).
ALTER TABLE account ADD COLUMN balance_micros INTEGER;
UPDATE account SET balance_micros = (SELECT CAST(MIN(MAX(TOTAL(amount_micros), -9007199254740991), 9007199254740991) AS INTEGER) FROM ledger);
-- D7: a MAC under a key derived from the KMS root key over a lineage's id, region, encryption
-- and key id (NULL until sealed: lineages made before this migration, or without a root key).
ALTER TABLE lineages ADD COLUMN mac BLOB;
-- D10: an incremental MAC over each disk's and snapshot's block map (NULL until sealed).
ALTER TABLE disks ADD COLUMN map_mac BLOB;
ALTER TABLE snapshots ADD COLUMN map_mac BLOB;
`,
  },
  {
    version: 4,
    sql: `
-- Owner tags: who created a resource (for the Pulumi provider, the resource's URN), so what an
-- interrupted deployment left behind can be found (encdisk orphans). Rows of deleted resources
-- are ignored by readers.
CREATE TABLE owners (
  resource_id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX owners_owner ON owners(owner);
`,
  },
  {
    version: 5,
    sql: `
-- Key files are named relative to the engine directory (nbd/<attachment>.psk), so a directory
-- opened through a symlink or moved keeps them (issue 12 D4). Every release wrote them there.
UPDATE attachments SET psk_file = 'nbd/' || attachment_id || '.psk';
-- (D6) meta nbd_psk_secret, the plaintext NBD PSK secret of older releases, is wrapped under
-- the KMS root key into meta nbd_psk_secret_wrapped by the engine on first open (SQL cannot).
`,
  },
];

-- Shards (docs/shards.md): the event log, the runs index and the waits spread over every D1 database bound
-- as DB, DB_1, DB_2, …; every shard gets every migration. This table is read on DB only: the shard counts
-- the deployment has written under, so that a row stored before a shard was added is still found where the
-- layout of its time put it. A deployment with only DB never writes it.
CREATE TABLE shard_layouts (
  count      INTEGER PRIMARY KEY,  -- how many shards were bound
  first_seen INTEGER NOT NULL      -- epoch ms: when a Worker first wrote under it
) WITHOUT ROWID;

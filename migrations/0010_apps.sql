-- Apps served by the official `inngest` SDK (issue 14, "Bring your Inngest app"): one row per app,
-- its functions as the SDK's last sync sent them (JSON, one field rather than a row per function).
CREATE TABLE apps (
  id TEXT PRIMARY KEY,           -- the SDK client's id (`appName` in its sync)
  url TEXT NOT NULL,             -- the serve URL, without the `deployId` the sync added
  framework TEXT,
  sdk TEXT,
  functions TEXT NOT NULL,       -- JSON array of the SDK's function configs
  synced_at INTEGER NOT NULL,
  deploy_id TEXT,                -- the sync that stored this version (POST /v1/apps finds its app by it)
  error TEXT,                    -- the last failed sync's error, cleared by a good one
  error_at INTEGER
);
CREATE INDEX apps_url ON apps (url);

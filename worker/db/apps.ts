/** A row of the D1 `apps` table: an app served by the `inngest` SDK and its last sync. */
export interface AppRow {
  id: string;
  url: string;
  framework: string | null;
  sdk: string | null;
  /** JSON array of the SDK's function configs. */
  functions: string;
  synced_at: number;
  deploy_id: string | null;
  error: string | null;
  error_at: number | null;
}

export async function allApps(db: D1Database): Promise<AppRow[]> {
  return (await db.prepare("SELECT * FROM apps ORDER BY id").all<AppRow>()).results;
}

export async function appById(db: D1Database, id: string): Promise<AppRow | null> {
  return db.prepare("SELECT * FROM apps WHERE id = ?1").bind(id).first<AppRow>();
}

export async function appByDeployId(db: D1Database, deployId: string): Promise<AppRow | null> {
  return db.prepare("SELECT * FROM apps WHERE deploy_id = ?1").bind(deployId).first<AppRow>();
}

/** Stores an app's sync: a new app, or its new functions in place of the old ones (a good sync clears the last error). */
export async function upsertApp(db: D1Database, app: Pick<AppRow, "id" | "url" | "framework" | "sdk" | "functions" | "synced_at" | "deploy_id">): Promise<void> {
  await db
    .prepare(
      `INSERT INTO apps (id, url, framework, sdk, functions, synced_at, deploy_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
       ON CONFLICT(id) DO UPDATE SET url = excluded.url, framework = excluded.framework, sdk = excluded.sdk,
         functions = excluded.functions, synced_at = excluded.synced_at, deploy_id = excluded.deploy_id, error = NULL, error_at = NULL`,
    )
    .bind(app.id, app.url, app.framework, app.sdk, app.functions, app.synced_at, app.deploy_id)
    .run();
}

/** Records a failed sync on the apps served at `url` (an app never synced has no row to record it on). */
export async function recordSyncError(db: D1Database, url: string, error: string, at: number): Promise<number> {
  const result = await db.prepare("UPDATE apps SET error = ?2, error_at = ?3 WHERE url = ?1").bind(url, error, at).run();
  return result.meta.changes ?? 0;
}

export async function deleteApp(db: D1Database, id: string): Promise<boolean> {
  const result = await db.prepare("DELETE FROM apps WHERE id = ?1").bind(id).run();
  return (result.meta.changes ?? 0) > 0;
}

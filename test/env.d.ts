import type { Env as StepflareEnv } from "../worker/platform/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends StepflareEnv {
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    }
  }
}

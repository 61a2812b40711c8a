import type { Env } from "../platform/env.ts";
import { isDevMode } from "../platform/env.ts";
import { signRequest } from "./signature.ts";
import type { RequestSigner } from "./transport.ts";

/**
 * How requests to apps are signed: outside dev mode with `STEPFLARE_SIGNING_KEY` (the apps'
 * `INNGEST_SIGNING_KEY`), as Inngest signs them; in dev mode not at all, as its Dev Server does.
 * Throws outside dev mode without the key: an app in cloud mode refuses unsigned requests anyway.
 */
export function appRequestSigner(env: Env): RequestSigner | undefined {
  if (isDevMode(env)) return undefined;
  const key = env.STEPFLARE_SIGNING_KEY;
  if (!key) throw new Error("this Worker has no STEPFLARE_SIGNING_KEY secret to sign its requests to apps with");
  return async (body) => {
    const signed = await signRequest(body, key);
    return { body: signed.body, headers: { "x-inngest-signature": signed.signature } };
  };
}
